"""Warm cell starts: a cell forked from the preloaded server gives bit-identical results to a cold
one, stays isolated (own process, session, group, log, budget), obeys Ctrl-C and kill, and the
runner falls back to cold starts where warm cannot work."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml

from harness.contracts.store_files import read_summary
from harness.runner.executor import CellTask, LocalProcessExecutor, LocalProcessHandle
from harness.runner.matrix import load_matrix
from harness.runner.warm import WarmHandle

from .conftest import REPO
from .test_cli import wait_for

TIMING_KEYS = {"elapsed_s", "tokens_per_s", "eval_s", "train_s"}


def smoke_cell(tmp_path, **overrides):
    sets = [("data.cache_dir", str(tmp_path / "data")), *overrides.items()]
    return load_matrix(str(REPO / "experiments" / "smoke.yaml"), sets).cells[0]


def task_for(cell, folder) -> CellTask:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(cell.config))
    return CellTask(cell.cell_id, folder / "config.yaml", folder, folder / "cell.log")


def run_to_end(executor, task):
    handle = executor.start(task)
    status = handle.wait(300)
    return handle, status


def records(folder) -> list[dict]:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(ln).items() if k not in TIMING_KEYS} for ln in lines]


@pytest.fixture
def warm_executor():
    """Per test: the server keeps the environment it started with, and each test has its own
    cache folders (tests/conftest.py), which a warm start would not see."""
    executor = LocalProcessExecutor(warm=True)
    yield executor
    executor.close()


@pytest.mark.slow
def test_a_warm_cell_gives_bit_identical_results_to_a_cold_one(tmp_path, warm_executor):
    cell = smoke_cell(tmp_path)
    cold_task, warm_task = task_for(cell, tmp_path / "cold"), task_for(cell, tmp_path / "warm")
    cold, cold_status = run_to_end(LocalProcessExecutor(), cold_task)
    warm, warm_status = run_to_end(warm_executor, warm_task)
    assert isinstance(cold, LocalProcessHandle) and isinstance(warm, WarmHandle), (
        warm_executor.take_notes()
    )
    assert cold_status.returncode == warm_status.returncode == 0
    a, b = (
        read_summary(cold_task.cell_dir / "summary.json"),
        read_summary(warm_task.cell_dir / "summary.json"),
    )
    assert a["outcome"] == b["outcome"] == "completed"
    assert a["metrics"] == b["metrics"] and a["train"]["last_loss"] == b["train"]["last_loss"]
    assert records(cold_task.cell_dir) == records(warm_task.cell_dir)
    predictions = "predictions.jsonl"
    assert (cold_task.cell_dir / predictions).read_bytes() == (
        warm_task.cell_dir / predictions
    ).read_bytes()
    assert warm_executor.take_notes() == []


def long_cell(tmp_path, warm_executor, name):
    cell = smoke_cell(tmp_path, **{"train.max_steps": 100000, "train.eval_every": 100000})
    task = task_for(cell, tmp_path / name)
    handle = warm_executor.start(task)
    assert isinstance(handle, WarmHandle)
    wait_for(lambda: (task.cell_dir / "metrics.jsonl").exists(), timeout=120)
    assert handle.poll() is None
    return task, handle


@pytest.mark.slow
def test_a_warm_cell_is_its_own_process_group_and_obeys_ctrl_c_and_kill(
    tmp_path, warm_executor, monkeypatch
):
    task, handle = long_cell(tmp_path, warm_executor, "interrupted")
    pid = handle.pid
    assert os.getpgid(pid) == pid and os.getsid(pid) == pid  # its own session and group
    server = warm_executor.warm.proc.pid
    stat = Path(f"/proc/{pid}/stat").read_text()
    assert int(stat.rsplit(")", 1)[1].split()[1]) == server  # forked by the server
    handle.interrupt()
    status = handle.wait(60)
    assert status is not None and status.returncode == 1
    summary = read_summary(task.cell_dir / "summary.json")
    assert summary["outcome"] == "interrupted" and summary["written_by"] == "cell"
    task, handle = long_cell(tmp_path, warm_executor, "killed")
    handle.kill()
    status = handle.wait(60)
    assert status is not None and status.signal == signal.SIGKILL
    assert not (task.cell_dir / "summary.json").exists()
    monkeypatch.setenv("HARNESS_TEST_SOMETHING_NEW", "1")  # the server imported without it
    handle = warm_executor.start(task_for(smoke_cell(tmp_path), tmp_path / "changed-env"))
    assert isinstance(handle, LocalProcessHandle)  # so this cell starts cold
    handle.kill()


def test_cold_fallbacks(tmp_path, monkeypatch, fake_command):
    custom = LocalProcessExecutor(command=fake_command, warm=True)
    assert custom.warm is None and "--cell-command" in custom.take_notes()[0]
    monkeypatch.setattr("harness.runner.warm.SERVER_MODULE", "harness.no_such_server")
    broken = LocalProcessExecutor(warm=True)
    handle = broken.start(task_for(smoke_cell(tmp_path), tmp_path / "a"))
    assert isinstance(handle, LocalProcessHandle)
    handle.kill()
    (note,) = broken.take_notes()
    assert "could not start" in note and "no_such_server" in note
    broken.close()
