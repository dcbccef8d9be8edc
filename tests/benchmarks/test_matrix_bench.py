"""Figures of the matrix runner (pytest-benchmark; skipped unless --benchmark-enable).

    .venv/bin/pytest tests/benchmarks/test_matrix_bench.py --benchmark-enable -o addopts= -q

Targets from the issue: expand + validate a 10,000-cell matrix < 1 s; resume scan of a store
with 10,000 completed cells < 2 s; runner overhead per cell <= 3 s beyond the cell's own work.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.contracts.schema import Metrics, Summary
from harness.contracts.store_files import write_json
from harness.runner import make_plan, run_plan
from harness.runner.executor import LocalProcessExecutor
from harness.runner.matrix import build_matrix
from harness.runner.store import Store

REPO = Path(__file__).resolve().parents[2]
BIG = {  # 25 x 5 x 4 x 5 x 2 x 2 = 10,000 cells, with a paired axis
    "name": "big",
    "base": {"train": {"max_steps": 10}},
    "matrix": {
        "seed": list(range(25)),
        "train.lr": [1e-3, 2e-3, 3e-3, 4e-3, 5e-3],
        "train.grad_accum": [1, 2, 4, 8],
        "batch": [
            {"train.micro_batch": m, "train.warmup_steps": w}
            for m, w in ((4, 1), (8, 2), (16, 3), (32, 4), (64, 5))
        ],
        "attention.mode": ["causal", "prefix_bidirectional"],
        "attention.impl": ["sdpa", "eager_dense"],
    },
}


def test_expand_and_validate_10k_cells(benchmark):
    matrix = benchmark(build_matrix, BIG, "big.yaml", [])
    assert len(matrix.cells) == 10_000
    print(
        f"\nexpand + validate 10,000 cells: {benchmark.stats.stats.mean:.3f} s = "
        f"{benchmark.stats.stats.mean / 1.0:.2f}x the 1 s target"
    )


def test_resume_scan_of_10k_completed_cells(benchmark, tmp_path):
    matrix = build_matrix(BIG, "big.yaml", [])
    store = Store(tmp_path / "runs", matrix.name)
    for cell in matrix.cells:
        cell_dir = store.cell_dir(cell.cell_id)
        cell_dir.mkdir(parents=True)
        metrics = Metrics(9, 10, 0.9, 0.95, 0.02, 0.1, 100, 0.9, 0.2)
        summary = Summary("completed", cell.cell_id, cell.config["seed"], metrics=metrics)
        write_json(cell_dir / "summary.json", summary)  # a full summary, as cells write it
    plan = benchmark(make_plan, matrix, matrix.cells, store, set())
    assert plan.count("done") == 10_000
    print(
        f"\nresume scan of 10,000 done cells: {benchmark.stats.stats.mean:.3f} s = "
        f"{benchmark.stats.stats.mean / 2.0:.2f}x the 2 s target"
    )


@pytest.mark.slow
def test_runner_overhead_per_cell(benchmark, tmp_path):
    """One tiny real cell through the runner, side by side with the cell entry point by hand."""
    raw = yaml.safe_load((REPO / "experiments" / "smoke.yaml").read_text())
    raw["base"]["data"]["cache_dir"] = str(tmp_path / "data")
    raw["matrix"] = {"attention.mode": ["causal"]}
    matrix = build_matrix(raw, "smoke.yaml", [])
    cfg_path = tmp_path / "cell.yaml"
    cfg_path.write_text(yaml.safe_dump(matrix.cells[0].config))
    by_hand: list[float] = []

    def run_by_hand() -> None:
        out = tmp_path / f"hand{len(by_hand)}"
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "harness.cell", str(cfg_path), "--out", str(out)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        by_hand.append(time.perf_counter() - start)

    run_by_hand()  # warm the captcha cache and the page cache
    rounds = {"n": 0}

    def through_runner() -> None:
        rounds["n"] += 1
        store = Store(tmp_path / f"runs{rounds['n']}", matrix.name)
        store.ensure_writable()
        plan = make_plan(matrix, matrix.cells, store, set())
        result = run_plan(plan, LocalProcessExecutor())
        assert result.outcomes() == ["completed"]

    # setup is not timed: each round runs the cell by hand, then through the runner
    benchmark.pedantic(through_runner, setup=run_by_hand, rounds=3, iterations=1)
    runner_s = benchmark.stats.stats.mean
    hand_s = sum(by_hand[1:]) / len(by_hand[1:])
    benchmark.extra_info.update(by_hand_s=hand_s, runner_s=runner_s)
    print(
        f"\ncell by hand {hand_s:.2f}s; through the runner {runner_s:.2f}s; "
        f"overhead {runner_s - hand_s:+.2f}s (target <= 3 s)"
    )
