"""CPU threads beside other work: steps/s of one demo-like cell, alone and beside one CPU-bound
process (``python -c "while True: pass"``), per ``runtime.threads`` setting.

Settings: ``null`` is what cells ran with before ``auto`` (torch's defaults: one thread per core,
OpenMP threads spinning at every barrier); ``auto`` is the default now (the cores this process
may use, idle threads sleeping: ``OMP_WAIT_POLICY=PASSIVE``); ``1`` is a single thread, for
reference. Each cell runs through the real cell CLI in a fresh process (the wait policy is read
when torch loads) with ``OMP_*`` and ``GOMP_*`` cleared from its environment, so only the setting
differs. The figure is ``summary.train.steps_per_s`` (training time only, setup and evaluation
excluded); run it on an otherwise quiet machine:

    python -m pytest tests/benchmarks/test_threads_bench.py -m slow --benchmark-only -s -q

No threshold is asserted (machines differ); the table printed at the end is the figure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.contracts.store_files import read_summary
from tests.cell_helpers import REPO, write_yaml

STEPS = 150
"""Optimizer steps per measured cell (a demo cell trains 800 of the same size)."""
SETTINGS = {"before (null)": None, "auto": "auto", "1 thread": 1}
RESULTS: dict[tuple[str, str], float] = {}


def demo_like_cell(cache: Path, threads: object) -> dict:
    """experiments/attention.yaml's causal cell (tiny-vlm, 4 x 4 samples per step), shorter."""
    return {
        "data": {"cache_dir": str(cache), "train_count": 1024, "val_count": 8, "test_count": 8},
        "model": {"name": "tiny-vlm"},
        "train": {
            "micro_batch": 4,
            "grad_accum": 4,
            "max_steps": STEPS,
            "warmup_steps": 50,
            "eval_every": 10 * STEPS,
            "log_every": 10,
        },
        "eval": {"batch_size": 8, "max_new_tokens": 12},
        "checkpoint": {"save": "none"},
        "runtime": {"device": "cpu", "threads": threads},
    }


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}


def _run_cell(config: Path, out: Path, busy: bool) -> dict:
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        subprocess.run(
            [sys.executable, "-m", "harness.cell", str(config), "--out", str(out)],
            cwd=REPO,
            env=_clean_env(),
            check=True,
            capture_output=True,
        )
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return read_summary(out / "summary.json")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("captcha")


@pytest.mark.slow
@pytest.mark.parametrize("busy", [False, True], ids=["alone", "beside a busy process"])
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_steps_per_second_by_thread_setting(benchmark, tmp_path, cache, setting, busy):
    config = write_yaml(tmp_path / "cell.yaml", demo_like_cell(cache, SETTINGS[setting]))
    summary = benchmark.pedantic(
        _run_cell, args=(config, tmp_path / "out", busy), rounds=1, iterations=1
    )
    assert summary["outcome"] == "completed" and summary["train"]["steps"] == STEPS
    where = "beside a busy process" if busy else "alone"
    rate = summary["train"]["steps_per_s"]
    RESULTS[(setting, where)] = rate
    benchmark.extra_info |= {
        "steps_per_s": rate,
        "torch_threads": summary["provenance"]["torch_threads"],
        "omp_wait_policy": summary["provenance"]["omp_wait_policy"],
    }
    if len(RESULTS) == 2 * len(SETTINGS):
        print(f"\n{os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} usable; steps/s:")
        print("| runtime.threads | alone | beside a busy process |")
        print("|---|---|---|")
        for name in SETTINGS:
            alone, busy_rate = RESULTS[(name, "alone")], RESULTS[(name, "beside a busy process")]
            print(f"| {name} | {alone:.2f} | {busy_rate:.2f} |")
