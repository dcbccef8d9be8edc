"""W&B broken in every way we can provoke offline: the matrix's results are identical to a run
without W&B, and the user gets exactly one warning line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.runner import make_plan, run_plan
from harness.runner.executor import LocalProcessExecutor
from harness.runner.matrix import load_matrix
from harness.runner.store import Store
from harness.runner.wandb_tracker import WandbSettings, WandbTracker
from tests.runner.conftest import FAKE_COMMAND, write_matrix

from .conftest import run_cli, warnings


def summaries(store: Path) -> dict[str, dict]:
    """Every cell's summary.json, less what differs between any two runs (clock times, pids)."""
    out = {}
    for path in sorted(store.glob("fake/*/summary.json")):
        summary = json.loads(path.read_text())
        for key in ("started_at", "finished_at", "pid"):
            summary["provenance"].pop(key, None)
        summary["timings"].pop("wall_s", None)
        out[path.parent.name] = summary
    return out


@pytest.fixture
def matrix(tmp_path) -> Path:
    return write_matrix(tmp_path / "fake.yaml", ["ok", "raise", "nan"], steps=5)


@pytest.fixture
def baseline(tmp_path, matrix, home):
    store = tmp_path / "baseline"
    done = run_cli(
        str(matrix), "--store", str(store), "--cell-command", FAKE_COMMAND, "--wandb", "disabled"
    )
    assert done.returncode == 1, done.stderr  # the `raise` cell failed
    assert not (store / "wandb").exists()
    return done, summaries(store)


def _unwritable_store_dir(store: Path, monkeypatch) -> list[str]:
    store.mkdir()
    (store / "wandb").write_text("a file where the W&B directory would go\n")
    return ["--wandb", "offline"]


def _unwritable_cache_dir(store: Path, monkeypatch) -> list[str]:
    blocker = store.parent / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("WANDB_CACHE_DIR", str(blocker / "cache"))
    return ["--wandb", "offline"]


def _online_without_a_key(store: Path, monkeypatch) -> list[str]:
    return ["--wandb", "online"]  # wandb.init fails at once: no key (and no network needed)


@pytest.mark.parametrize(
    "break_wandb", [_unwritable_store_dir, _unwritable_cache_dir, _online_without_a_key]
)
def test_broken_wandb_leaves_the_results_identical(
    tmp_path, matrix, baseline, monkeypatch, break_wandb
):
    store = tmp_path / "runs"
    flags = break_wandb(store, monkeypatch)
    done = run_cli(str(matrix), "--store", str(store), "--cell-command", FAKE_COMMAND, *flags)
    before, before_summaries = baseline
    assert done.returncode == before.returncode == 1
    assert summaries(store) == before_summaries
    assert "matrix summary" in done.stdout
    (line,) = warnings(done.stderr)
    assert "W&B" in line and "run store is complete" in line, done.stderr


def _tracked_run(tmp_path: Path, command: list[str], timeout_s: float = 60.0):
    matrix = load_matrix(write_matrix(tmp_path / "fake.yaml", ["ok", "raise"], steps=5))
    store = Store(tmp_path / "runs", matrix.name)
    store.ensure_writable()
    settings = WandbSettings("offline", "p", finish_timeout_s=timeout_s)
    said: list[str] = []
    tracker = WandbTracker(settings, store.root / "wandb", store.matrix_dir, said.append, command)
    executor = LocalProcessExecutor(command=FAKE_COMMAND.split())
    try:
        result = run_plan(make_plan(matrix, matrix.cells, store, set()), executor, tracker=tracker)
    finally:
        tracker.close()
    return result, said, store


def test_a_mirror_that_exits_at_once_is_one_warning(tmp_path, home):
    result, said, _ = _tracked_run(tmp_path, [sys.executable, "-c", "raise SystemExit(3)"])
    assert result.outcomes() == ["completed", "failed"]
    (line,) = said
    assert "exit status 3" in line and "mirror.log" in line


def test_a_hanging_mirror_is_stopped_after_its_timeout(tmp_path, home):
    hang = [sys.executable, "-c", "import time; time.sleep(600)"]  # never reads, never exits
    result, said, _ = _tracked_run(tmp_path, hang, timeout_s=0.5)
    assert result.outcomes() == ["completed", "failed"]
    (line,) = said
    assert "did not finish within 0.5 s" in line


def test_a_mirror_that_falls_behind_never_blocks_the_runner(tmp_path, monkeypatch):
    """Writes never block: past the pipe and the backlog, records are dropped (one warning);
    a cell's start and end are always kept."""
    monkeypatch.setattr("harness.runner.wandb_tracker.MAX_BACKLOG", 1 << 16)
    settings = WandbSettings("offline", "p", finish_timeout_s=0.5)
    said: list[str] = []
    stuck = [sys.executable, "-c", "import time; time.sleep(600)"]  # never reads its input
    tracker = WandbTracker(settings, tmp_path / "wandb", tmp_path / "m", said.append, stuck)
    tracker.on_cell_start("c1", {"matrix": "m"}, {"seed": 0})
    record = {"kind": "train", "step": 1, "loss": 1.0, "pad": "x" * 1000}
    for step in range(4000):  # ~4 MB: more than any pipe plus the backlog
        tracker.on_record("c1", {**record, "step": step})
    tracker.on_cell_end("c1", {"outcome": "completed"})
    assert tracker.dropped > 0
    assert tracker.backlog.endswith(b'"summary": {"outcome": "completed"}}\n')
    (line,) = said
    assert "falling behind" in line and "run store has them all" in line
    tracker.close()
    assert "did not finish within 0.5 s" in said[-1] and len(said) == 2
