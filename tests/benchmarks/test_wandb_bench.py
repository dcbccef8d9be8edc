"""Overhead of the W&B mirror per cell: the smoke matrix with `--wandb offline` side by side with
`--wandb disabled` (pytest-benchmark; skipped unless benchmarks are enabled).

    .venv/bin/pytest tests/benchmarks/test_wandb_bench.py -m slow --benchmark-only -q -s

Target from the issue: offline tracking costs <= 2 s per cell. Each round runs the whole
matrix through the real CLI (mirror start, every run's init/log/finish, the wait at the end),
into a fresh store; the `disabled` run of the same round is the setup, timed by hand.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.wandb_access.env import WANDB_DIR_VARS

REPO = Path(__file__).resolve().parents[2]
CELLS = 2


@pytest.mark.slow
def test_offline_tracking_overhead_per_cell(benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in WANDB_DIR_VARS:  # W&B directories follow the store, as for a user
        monkeypatch.delenv(var, raising=False)
    raw = yaml.safe_load((REPO / "experiments" / "smoke.yaml").read_text())
    raw["base"]["data"]["cache_dir"] = str(tmp_path / "data")
    matrix = tmp_path / "smoke.yaml"
    matrix.write_text(yaml.safe_dump(raw))
    rounds = {"n": 0}
    disabled: list[float] = []

    def run(mode: str) -> float:
        rounds["n"] += 1
        store = tmp_path / f"runs{rounds['n']}"
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "run_matrix.py",
                str(matrix),
                "--store",
                str(store),
                "--quiet",
                "--wandb",
                mode,
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        took = time.perf_counter() - start
        assert (store / "wandb").is_dir() == (mode == "offline")
        return took

    run("disabled")  # warm the captcha cache and the page cache
    benchmark.pedantic(
        lambda: run("offline"),
        setup=lambda: disabled.append(run("disabled")),
        rounds=3,
        iterations=1,
    )
    offline_s = benchmark.stats.stats.mean
    disabled_s = sum(disabled) / len(disabled)
    per_cell = (offline_s - disabled_s) / CELLS
    benchmark.extra_info.update(
        disabled_s=disabled_s, offline_s=offline_s, overhead_per_cell_s=per_cell
    )
    print(
        f"\nsmoke matrix ({CELLS} cells): disabled {disabled_s:.2f} s, offline {offline_s:.2f} s"
        f" -> W&B overhead {per_cell:+.2f} s per cell (target <= 2 s)"
    )
