"""A real cell SIGKILLed at a random step and run again through ``run_matrix.py``: it continues
from its last resume point and ends bit-identical (predictions.jsonl, metrics, the loss curve) to
an uninterrupted run of the same cell on CPU, which a store without resume points holds.

The step is a seeded random choice; the test waits for it by following the cell's metrics.jsonl
(one train line per step) and then kills the process whose stdout is the cell's log, whatever
started it (the runner, its warm server, a Ray worker). Two kills: the cell alone (the runner
records `failed`, killed by SIGKILL, and ``--rerun failed`` runs it again) and the runner (the
cell dies with it, no summary at all, and a plain rerun continues).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.contracts import schema
from harness.contracts.store_files import read_resume_manifest
from tests.cell_helpers import TINY_MODEL
from tests.test_resume import assert_same_result

from .conftest import REPO

SEED = 26
STEPS = 40
EVERY = 3
KILL_STEPS = (EVERY + 2, STEPS - 12)
"""The kill step is drawn from this range: past the first resume point, well before the end."""


def write_matrix(path: Path, data_dir: Path) -> Path:
    base = {
        "seed": 0,
        "data": {"cache_dir": str(data_dir), "train_count": 128, "val_count": 8, "test_count": 8},
        "model": {**TINY_MODEL, "hidden_size": 64, "num_layers": 2},
        "train": {
            "max_steps": STEPS,
            "micro_batch": 16,
            "eval_every": 5,
            "log_every": 1,
            "warmup_steps": 4,
        },
        "eval": {"batch_size": 8, "max_new_tokens": 8},
        "checkpoint": {"save": "both"},
        "runtime": {"device": "cpu", "threads": 1, "timeout_s": 300},
    }
    raw = {"name": "resume", "base": base, "matrix": {"seed": [0]}}
    path.write_text("# python run_matrix.py resume.yaml\n" + yaml.safe_dump(raw))
    return path


def run_matrix(matrix: Path, store: Path, *extra: str, wait: bool = True):
    argv = [sys.executable, "run_matrix.py", str(matrix), "--store", str(store), *extra]
    if not wait:
        return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)


def the_cell(store: Path) -> Path:
    (cell,) = [p for p in (store / "resume").iterdir() if p.is_dir() and p.name != ".locks"]
    return cell


def train_steps(cell_dir: Path) -> int:
    try:
        lines = (cell_dir / schema.METRICS_FILE).read_text().splitlines()
    except OSError:
        return 0
    steps = [json.loads(ln)["step"] for ln in lines if ln.endswith("}") and '"train"' in ln]
    return max(steps, default=0)


def cell_pid(cell_dir: Path) -> int | None:
    """The process whose stdout is the cell's log (the cell, however it was started)."""
    log = str(cell_dir / schema.LOG_FILE)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "fd" / "1") == log:
                    return int(entry.name)
            except OSError:
                continue
    return None


def wait_until(predicate, what: str, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """(matrix file, cell folder) of an uninterrupted run without resume points."""
    root = tmp_path_factory.mktemp("reference")
    matrix = write_matrix(root / "resume.yaml", root / "data")
    done = run_matrix(matrix, root / "runs", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    return matrix, the_cell(root / "runs")


def kill_at_random_step(matrix: Path, store: Path, target: str, *extra: str) -> tuple[int, int]:
    """Start the runner, SIGKILL the cell (or the runner) at a random step; (kill step, step of
    the resume point left)."""
    kill_step = random.Random(f"{SEED}-{target}").randint(*KILL_STEPS)
    runner = run_matrix(
        matrix, store, "--set", f"checkpoint.resume_every={EVERY}", *extra, wait=False
    )
    wait_until(
        lambda: (
            (store / "resume").is_dir()
            and any(
                (p / schema.LOG_FILE).exists()
                for p in (store / "resume").iterdir()
                if p.name != ".locks"
            )
        ),
        "the cell folder",
    )
    cell_dir = the_cell(store)
    wait_until(lambda: train_steps(cell_dir) >= kill_step, f"step {kill_step}")
    pid = cell_pid(cell_dir) if target == "cell" else runner.pid
    assert pid is not None, "the cell process is not there"
    os.kill(pid, signal.SIGKILL)
    runner.communicate(timeout=120)
    assert train_steps(cell_dir) < STEPS, "the cell finished before the kill"
    manifest = read_resume_manifest(cell_dir / schema.RESUME_DIR / schema.RESUME_MANIFEST)
    assert kill_step - EVERY <= manifest["step"] <= STEPS and manifest["step"] % EVERY == 0
    return kill_step, manifest["step"]


@pytest.mark.slow  # five real runs of a 40-step cell: about 2 minutes on a busy 2-core machine
@pytest.mark.parametrize("target", ["cell", "runner"])
def test_a_cell_killed_at_a_random_step_resumes_bit_identical(reference, tmp_path, target):
    matrix, ref = reference
    store = tmp_path / "runs"
    _, at = kill_at_random_step(matrix, store, target)
    cell_dir = the_cell(store)
    assert cell_dir.name == ref.name, "resume_every is not part of the cell id"
    if target == "cell":  # the runner saw the kill and recorded it
        first = json.loads((cell_dir / schema.SUMMARY_FILE).read_text())
        assert first["outcome"] == "failed" and "SIGKILL" in first["error"]["message"]
        again = run_matrix(matrix, store, "--rerun", "failed")
    else:  # the cell died with its runner: no summary
        assert not (cell_dir / schema.SUMMARY_FILE).exists()
        again = run_matrix(matrix, store)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming at step {at}/{STEPS}" in again.stderr
    assert f"resumed at step {at}/{STEPS}" in again.stderr  # the cell's line
    summary = json.loads((cell_dir / schema.SUMMARY_FILE).read_text())
    assert summary["outcome"] == "completed" and summary["train"]["resumed_at"] == at
    assert not (cell_dir / schema.RESUME_DIR).exists()
    assert_same_result(ref, cell_dir)
