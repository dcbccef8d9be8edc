"""Cluster figures, measured side by side in one run (no thresholds on time: machines are noisy).

    .venv/bin/pytest tests/benchmarks/test_cluster_bench.py -m slow --benchmark-enable -o addopts= -q -s

- ``experiments/smoke.yaml`` wall through the real CLI: local (2 workers, warm starts) vs
  ``--executor slurm`` (a real one-node Slurm: ``bash .ci/install-slurm``) vs ``--executor ray``
  (a local Ray instance started for the run).
- Per-cell submission overhead on Slurm: sbatch answering -> the job starting (the scheduler),
  and the job starting -> the cell's first training record (a fresh interpreter: Slurm cells
  always start cold), beside the local executor's cold and warm starts in the same run.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {
    "local (2 workers, warm)": ["--workers", "2"],
    "local (2 workers, cold)": ["--workers", "2", "--cold-start"],
    "slurm": ["--executor", "slurm"],
    "ray": ["--executor", "ray"],
}


def _slurm_up() -> bool:
    if shutil.which("scontrol") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, check=False)
    return "UP" in ping.stdout


def _run(store: Path, cache: Path, flags: list[str]) -> dict:
    """One smoke run, following each cell's files: wall, and per cell when its job id appeared
    in cell.json, when its job started (``slurm_job.json``) and its first training record."""
    args = ["experiments/smoke.yaml", "--store", str(store), "--set", f"data.cache_dir={cache}"]
    seen: dict[str, dict[str, float]] = {}
    t0 = time.time()
    proc = subprocess.Popen(
        [sys.executable, "run_matrix.py", *args, "--quiet", *flags],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    while proc.poll() is None:
        for d in (store / "smoke").glob("[0-9a-f]*"):
            times = seen.setdefault(d.name, {"start": time.time()})
            _note_first(d, times)
        time.sleep(0.02)
    wall = time.time() - t0
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    for d in (store / "smoke").glob("[0-9a-f]*"):
        job = d / "slurm_job.json"
        if job.exists():
            seen[d.name]["job_start"] = json.loads(job.read_text())["started_unix"]
    return {"wall": wall, "cells": seen}


def _note_first(cell_dir: Path, times: dict[str, float]) -> None:
    if "submitted" not in times:
        try:
            if (json.loads((cell_dir / "cell.json").read_text()).get("job") or {}).get("id"):
                times["submitted"] = time.time()
        except (OSError, ValueError):
            pass
    if "first_step" not in times:
        try:
            if (cell_dir / "metrics.jsonl").read_text().count("\n") >= 1:
                times["first_step"] = time.time()
        except OSError:
            pass


@pytest.mark.slow
def test_smoke_wall_local_vs_slurm_vs_ray_and_slurm_overhead(benchmark, tmp_path):
    if not _slurm_up():
        pytest.skip("no running Slurm here; get a one-node one: bash .ci/install-slurm")
    pytest.importorskip("ray")
    pytest.importorskip("submitit")
    cache = tmp_path / "captcha"
    _run(tmp_path / "warmup", cache, ["--max-cells", "1", "--cold-start"])  # data, page cache

    def measure() -> dict[str, dict]:
        return {name: _run(tmp_path / f"s{i}", cache, flags)
                for i, (name, flags) in enumerate(SETTINGS.items())}  # fmt: skip

    runs = benchmark.pedantic(measure, rounds=1, iterations=1)
    print("\nsmoke.yaml wall, one run each, side by side:")
    for name, run in runs.items():
        print(f"  {name:26} {run['wall']:6.1f} s")
        benchmark.extra_info[f"{name} wall_s"] = round(run["wall"], 2)
    slurm = runs["slurm"]["cells"].values()
    queue = [c["job_start"] - c["submitted"] for c in slurm]
    start = [c["first_step"] - c["job_start"] for c in slurm]
    print(f"  Slurm sbatch -> job start: {', '.join(f'{q:.2f}' for q in queue)} s")
    print(f"  Slurm job start -> first step (cold): {', '.join(f'{s:.2f}' for s in start)} s")
    for name in ("local (2 workers, warm)", "local (2 workers, cold)"):
        local = [c["first_step"] - c["start"] for c in runs[name]["cells"].values()]
        print(f"  {name}: cell folder -> first step {', '.join(f'{s:.2f}' for s in local)} s")
        benchmark.extra_info[f"{name} start_s"] = round(statistics.median(local), 2)
    benchmark.extra_info["slurm queue_s"] = round(statistics.median(queue), 2)
    benchmark.extra_info["slurm start_s"] = round(statistics.median(start), 2)
    assert len(runs["slurm"]["cells"]) == 2 and all(s > 0 for s in start)
