"""What resume points cost: the demo's cell (``experiments/attention.yaml``, causal, sdpa, seed 0)
trained in-process with ``checkpoint.resume_every`` and without, interleaved in one run, and
the time and size of one resume point. No threshold on time: machines are noisy; the ratio and
the per-point figures are in ``extra_info`` and printed; the pytest-benchmark row is one
resume point of the demo's model written again."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from harness.cell.encoding import load_splits
from harness.cell.resume import ResumePoints
from harness.cell.train import MetricsSink, TrainResult, train
from harness.contracts import schema
from harness.contracts.config import parse_cell_config
from harness.models import build_model
from harness.runner.matrix import load_matrix

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "experiments" / "attention.yaml"
STEPS = 60
EVERY = 10
"""Points per run: STEPS / EVERY (the demo's 700 steps at resume_every 100 write 7)."""
ROUNDS = 3


def _demo_config(cache: Path, out: Path, every: int | None):
    (cell,) = [
        c.config
        for c in load_matrix(DEMO).cells
        if c.config["attention"]["mode"] == "causal" and c.repeat == 0
    ]
    data = {**cell["data"], "cache_dir": str(cache), "train_count": 512, "val_count": 16}
    train_cfg = {**cell["train"], "max_steps": STEPS, "eval_every": STEPS, "warmup_steps": 5}
    return parse_cell_config(
        {
            **cell,
            "data": {**data, "test_count": 16},
            "train": train_cfg,
            "checkpoint": {"save": "none", "resume_every": every},
        }
    )


class TimedPoints(ResumePoints):
    """Resume points that time their own writes."""

    written: ClassVar[list[float]] = []
    last: ClassVar[tuple] = ()
    """(points, the arguments) of the last write: the benchmark row writes that point again."""

    def write(self, *args) -> None:
        t0 = time.perf_counter()
        super().write(*args)
        TimedPoints.written.append(time.perf_counter() - t0)
        TimedPoints.last = (self, args)


def _run(cfg, out: Path) -> float:
    """Seconds of one training run (setup not counted), resume points written into ``out``."""
    torch.manual_seed(cfg.seed)
    splits = load_splits(cfg.data)
    model, _ = build_model(cfg.model)
    model.set_attention(cfg.attention.mode, cfg.attention.impl)
    train_set, val_set, _ = splits.encode(model)
    out.mkdir(parents=True, exist_ok=True)
    points = TimedPoints(cfg, out) if cfg.checkpoint.resume_every else None
    t0 = time.perf_counter()
    train(
        model,
        train_set,
        val_set,
        cfg,
        torch.device("cpu"),
        MetricsSink(None),
        res=TrainResult(),
        resume=points,
    )
    return time.perf_counter() - t0


@pytest.mark.slow
def test_resume_point_overhead(benchmark, tmp_path):
    torch.set_num_threads(1)
    cache = tmp_path / "captcha"
    off, on = _demo_config(cache, tmp_path, None), _demo_config(cache, tmp_path, EVERY)
    times: dict[str, list[float]] = {"off": [], "on": []}
    for r in range(ROUNDS):
        for name, cfg in (("off", off), ("on", on)):
            times[name].append(_run(cfg, tmp_path / f"{name}{r}"))
    med = {k: statistics.median(v) for k, v in times.items()}
    state = tmp_path / "on0" / schema.RESUME_DIR
    size = sum(p.stat().st_size for p in state.iterdir())
    per_point = statistics.median(TimedPoints.written)
    per_step = med["off"] / STEPS
    points, args = TimedPoints.last
    benchmark.pedantic(lambda: ResumePoints.write(points, *args), rounds=5, iterations=1)
    benchmark.extra_info |= {
        "ratio_on_vs_off": med["on"] / med["off"],
        "s_per_point": per_point,
        "point_bytes": size,
        "s_per_step": per_step,
        "demo_overhead_at_100": per_point * 7 / (per_step * 700),
    }
    print(
        f"\ndemo cell, {STEPS} steps, 1 thread, median of {ROUNDS} interleaved runs: "
        f"resume_every {EVERY} {med['on']:.2f} s vs off {med['off']:.2f} s "
        f"({med['on'] / med['off']:.3f}x); one point {per_point * 1e3:.0f} ms, "
        f"{size / 2**20:.1f} MiB; a step {per_step * 1e3:.0f} ms; the demo's 700 steps at "
        f"resume_every 100 would pay {100 * per_point * 7 / (per_step * 700):.2f}%"
    )
