"""Faults while a matrix runs: a full disk, a cell command that cannot start, a report that
cannot be written. Each ends as a recorded outcome and an exit status, the store stays readable
and resumable, and the message says what happened."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.runner import make_plan, run_plan
from harness.runner.executor import LocalProcessExecutor
from harness.runner.matrix import load_matrix
from harness.runner.store import Store
from tests.cell_helpers import tiny_cell

from .conftest import FAKE_COMMAND, REPO, write_matrix

LIMIT = Path(__file__).with_name("limit_fsize.py")
FSIZE = 32 * 1024
"""Larger than every file a tiny cell writes except its checkpoint (about 90 KB)."""


def run_matrix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run_matrix.py", *args, "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_a_full_disk_while_a_cell_writes_fails_the_cell_and_the_store_resumes(tmp_path):
    """RLIMIT_FSIZE on the real cell's process: its checkpoint write fails as on a full disk."""
    base = tiny_cell(tmp_path / "data", checkpoint__save="final")
    matrix = tmp_path / "disk.yaml"
    matrix.write_text(yaml.safe_dump({"name": "disk", "base": base, "matrix": {"seed": [0]}}))
    store = tmp_path / "runs"
    limited = f"{sys.executable} {LIMIT} {FSIZE} {sys.executable} -m harness.cell"
    done = run_matrix(str(matrix), "--store", str(store), "--cell-command", limited)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "1 cell(s) failed" in done.stderr
    (cell_dir,) = [p for p in (store / "disk").iterdir() if p.is_dir() and p.name != ".locks"]
    summary = json.loads((cell_dir / "summary.json").read_text())
    assert summary["outcome"] == "failed" and summary["written_by"] == "cell"
    error = summary["error"]
    assert error["type"] == "OSError" and "[Errno 27] File too large" in error["message"]
    assert "final.safetensors" in error["message"] and "Traceback" not in error["log_tail"]
    assert summary["train"]["steps"] == base["train"]["max_steps"]  # what it did is kept
    assert not list((cell_dir / "ckpt").iterdir())  # no half-written checkpoint
    report = subprocess.run(
        [sys.executable, "-m", "reports", str(store / "disk"), "--no-plots"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    assert "OSError: [Errno 27]" in (store / "disk" / "EXPERIMENTS.md").read_text()
    resumed = run_matrix(str(matrix), "--store", str(store), "--rerun", "failed")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((cell_dir / "summary.json").read_text())["outcome"] == "completed"
    assert json.loads((cell_dir / "summary.json.1").read_text())["outcome"] == "failed"
    assert (cell_dir / "cell.log.1").exists() and (cell_dir / "ckpt" / "final.safetensors").exists()


def test_a_cell_command_that_cannot_start_is_a_failed_cell_not_a_crash(tmp_path):
    """An OSError from the executor (the runner's check on PATH cannot see every case: a
    command removed since, a wrapper's own failure) ends that cell `failed`, and the run goes on."""
    matrix = load_matrix(write_matrix(tmp_path / "m.yaml", ["a", "b"]))
    store = Store(tmp_path / "runs", matrix.name)
    plan = make_plan(matrix, matrix.cells, store, set())
    result = run_plan(plan, LocalProcessExecutor(command=[str(tmp_path / "gone" / "cell")]))
    assert [s["outcome"] for _, s, _ in result.rows] == ["failed", "failed"]
    for cell, summary, status in result.rows:
        assert status == "ran" and summary["written_by"] == "runner"
        assert summary["error"]["type"] == "executor"
        assert "could not be started" in summary["error"]["message"]
        assert "No such file or directory" in summary["error"]["message"]
        names = {p.name for p in store.cell_dir(cell.cell_id).iterdir()}
        assert names == {"config.yaml", "cell.json", "cell.log", "summary.json"}
        info = json.loads((store.cell_dir(cell.cell_id) / "cell.json").read_text())
        assert info["finished_at"]  # a complete record, not a half-written folder


def test_a_report_that_cannot_be_written_is_exit_1_after_a_complete_run(tmp_path):
    matrix = write_matrix(tmp_path / "m.yaml", ["a"])
    out = tmp_path / "report" / "EXPERIMENTS.md"
    out.parent.mkdir()
    (out.parent / "EXPERIMENTS_plots").write_text("a file where the plots folder goes")
    store = tmp_path / "runs"
    args = [str(matrix), "--store", str(store), "--cell-command", FAKE_COMMAND]
    done = run_matrix(*args, "--report", str(out))
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "the report could not be written" in lines[0], done.stderr
    assert "python -m reports" in lines[0] and "Traceback" not in done.stderr
    assert json.loads(next((store / "fake").glob("*/summary.json")).read_text())["outcome"] == (
        "completed"
    )


def test_dry_run_counts_the_cells_skipped_by_max_cells(tmp_path):
    matrix = write_matrix(tmp_path / "m.yaml", ["a", "b", "c"])
    args = [str(matrix), "--store", str(tmp_path / "runs"), "--dry-run", "--max-cells", "1"]
    done = run_matrix(*args)
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[1]
    assert header == "3 cells: 1 to run, 0 done, 0 running elsewhere, 2 skipped by --max-cells"
    plan = json.loads(run_matrix(*args, "--json").stdout)
    assert (plan["to_run"], plan["skipped"]) == (1, 2)


def test_a_corrupt_or_hand_edited_summary_is_run_again_and_kept(tmp_path, fake_command):
    """Binary garbage, an impossible count, a wrong type: the cell is not done, resume runs it
    again and keeps the damaged file as summary.json.1."""
    matrix = load_matrix(write_matrix(tmp_path / "m.yaml", ["a", "b", "c"]))
    store = Store(tmp_path / "runs", matrix.name)
    run_plan(
        make_plan(matrix, matrix.cells, store, set()), LocalProcessExecutor(command=fake_command)
    )
    damage = [
        b"\x00\xff garbage",
        json.dumps(
            {
                "outcome": "completed",
                "cell_id": "x",
                "seed": 0,
                "metrics": {"n": 2, "exact_match_k": 5},
            }
        ).encode(),
        json.dumps({"outcome": "completed", "cell_id": "x", "seed": "zero"}).encode(),
    ]
    for cell, data in zip(matrix.cells, damage, strict=True):
        (store.cell_dir(cell.cell_id) / "summary.json").write_bytes(data)
    plan = make_plan(matrix, matrix.cells, store, set())
    assert [p.action for p in plan.cells] == ["run"] * 3
    result = run_plan(plan, LocalProcessExecutor(command=fake_command))
    assert [s["outcome"] for _, s, _ in result.rows] == ["completed"] * 3
    for cell, data in zip(matrix.cells, damage, strict=True):
        assert (store.cell_dir(cell.cell_id) / "summary.json.1").read_bytes() == data
