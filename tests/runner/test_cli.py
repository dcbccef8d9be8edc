"""The real CLI process with a fake cell: kill -9 and resume, Ctrl-C, two runners, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import FAKE_COMMAND, REPO, write_matrix


def cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "run_matrix.py"), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def fake_cli(matrix: Path, store: Path, *args: str) -> subprocess.Popen:
    return cli(str(matrix), "--store", str(store), "--cell-command", FAKE_COMMAND, *args)


def wait_for(predicate, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def cell_dirs(store: Path) -> list[Path]:
    return sorted(
        p for p in (store / "fake").iterdir() if p.is_dir() and not p.name.startswith(".")
    )


def outcomes(store: Path) -> list[str]:
    return [json.loads((d / "summary.json").read_text())["outcome"] for d in cell_dirs(store)]


def starts(store: Path) -> int:
    """How many times any cell process started (the fake cell logs one line per start)."""
    return sum((d / "cell.log").read_text().count("starting") for d in cell_dirs(store))


def test_kill_9_of_the_runner_then_resume_finishes_without_repeating(tmp_path):
    matrix = write_matrix(tmp_path / "m.yaml", ["a", "b", "c", "d"], steps=10, step_ms=100)
    store = tmp_path / "runs"
    proc = fake_cli(matrix, store)
    wait_for(
        lambda: (
            (store / "fake").exists()
            and sum((d / "metrics.jsonl").exists() for d in cell_dirs(store)) >= 2
        )
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    done_before = [d for d in cell_dirs(store) if (d / "summary.json").exists()]
    half = [d for d in cell_dirs(store) if not (d / "summary.json").exists()]
    assert done_before and half  # killed mid-matrix: some cells finished, one was cut off
    mtimes = {d: (d / "summary.json").stat().st_mtime_ns for d in done_before}
    started = [d for d in half if (d / "metrics.jsonl").exists()]
    sizes = {d: (d / "metrics.jsonl").stat().st_size for d in started}
    time.sleep(1.0)  # the orphaned cell dies with its runner: nothing more is written
    assert {d: (d / "metrics.jsonl").stat().st_size for d in started} == sizes
    resumed = fake_cli(matrix, store, "--quiet")
    _out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert outcomes(store) == ["completed"] * 4
    assert {d: (d / "summary.json").stat().st_mtime_ns for d in done_before} == mtimes  # not rerun
    assert all((d / "cell.log.1").exists() for d in started)  # the killed attempt's log is kept
    assert starts(store) == 4


@pytest.mark.slow
def test_ctrl_c_marks_the_running_cell_interrupted_and_resume_continues(tmp_path):
    matrix = write_matrix(tmp_path / "m.yaml", ["a", "b", "c"], steps=20, step_ms=100)
    store = tmp_path / "runs"
    proc = fake_cli(matrix, store)
    wait_for(
        lambda: (
            (store / "fake").exists()
            and any((d / "metrics.jsonl").exists() for d in cell_dirs(store))
        )
    )
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err and "Resume with" in err
    assert outcomes(store) == ["interrupted"]
    resumed = fake_cli(matrix, store, "--quiet")
    _, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert outcomes(store) == ["completed"] * 3


def test_two_runners_on_one_store_never_run_a_cell_twice(tmp_path):
    matrix = write_matrix(tmp_path / "m.yaml", ["a", "b", "c", "d"], steps=5, step_ms=50)
    store = tmp_path / "runs"
    procs = [fake_cli(matrix, store, "--quiet") for _ in range(2)]
    for p in procs:
        p.communicate(timeout=60)
    assert outcomes(store) == ["completed"] * 4
    assert starts(store) == 4


def test_dry_run_json_prints_the_plan_and_writes_nothing(tmp_path):
    matrix = write_matrix(tmp_path / "m.yaml", ["a", "b"])
    proc = fake_cli(matrix, tmp_path / "runs", "--dry-run", "--json")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    plan = json.loads(out)
    assert (plan["total"], plan["to_run"], plan["done"]) == (2, 2, 0)
    assert [c["axes"] for c in plan["cells"]] == [{"data.question": "a"}, {"data.question": "b"}]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        ("matrix: [oops", (), "malformed YAML"),
        ("matrix:\n  train.grad_acum: [4, 8]\n", (), "did you mean `train.grad_accum`"),
        ("matrix:\n  seed: [0]\n", ("--set", "train.lr=fast"), "expected a number"),
        ("matrix:\n  seed: [0]\n", ("--only", "seed=5"), "selects none"),
        ("matrix:\n  seed: [0]\n", ("--store", "/proc/nope"), "cannot write to the run store"),
    ],
)
def test_bad_input_is_one_clear_message_and_exit_2(tmp_path, content, args, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    store_args = () if "--store" in args else ("--store", str(tmp_path / "runs"))
    proc = cli(str(path), *store_args, *args)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_a_failed_cell_s_reason_is_in_the_table_and_the_last_line(tmp_path):
    """Before: `failed (train: RuntimeError)` and "see error.log_tail in their summary.json"."""
    matrix = write_matrix(tmp_path / "m.yaml", ["ok", "raise"])
    proc = fake_cli(matrix, tmp_path / "runs")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "failed (train: RuntimeError: boom from the fake cell)" in out  # the summary table
    last = err.strip().splitlines()[-1]
    assert last.startswith("1 cell(s) failed: raise (") and "--rerun failed" in last
    assert "train: RuntimeError: boom from the fake cell" in last
