"""``runtime.skip_predicted_oom``: a cell a finished OOM cell predicts is recorded, not run."""

from __future__ import annotations

import copy

import pytest
import yaml

from harness.contracts.store_files import read_summary, write_json
from harness.runner import make_plan, run_plan
from harness.runner.cell_text import cell_line
from harness.runner.executor import LocalProcessExecutor
from harness.runner.matrix import load_matrix
from harness.runner.predict import _predicts
from harness.runner.store import Store
from reports.fmt import outcome
from reports.results import CellResult


def _matrix(tmp_path, backoff=(), **base_runtime):
    raw = {
        "name": "predict",
        "base": {
            "train": {"max_steps": 2, "micro_batch": 1},
            "runtime": {
                "memory_budget_gb": 0.5,
                "skip_predicted_oom": True,
                "oom_backoff": list(backoff),
                **base_runtime,
            },
        },
        "matrix": {"model.image_tokens": [729, 1000]},
    }
    path = tmp_path / "m.yaml"
    path.write_text("# python run_matrix.py m.yaml\n" + yaml.safe_dump(raw))
    return load_matrix(path)


def _oom_summary(cell_id: str, phase: str = "train") -> dict:
    oom = {"phase": phase, "in_use_bytes": 2**29, "budget_bytes": 2**29, "message": "x"}
    return {"outcome": "oom", "cell_id": cell_id, "seed": 0, "oom": oom}


def _stored_oom(store: Store, cell) -> None:
    """A cell that ran out of memory at micro-batch 1 in an earlier run."""
    cell_dir = store.cell_dir(cell.cell_id)
    cell_dir.mkdir(parents=True)
    (cell_dir / "config.yaml").write_text(yaml.safe_dump(cell.config))
    write_json(cell_dir / "summary.json", _oom_summary(cell.cell_id))


def test_a_predicted_cell_is_recorded_skipped_and_never_started(
    tmp_path, fake_command, monkeypatch
):
    starts = tmp_path / "starts.txt"
    monkeypatch.setenv("FAKE_CELL_STARTS", str(starts))
    matrix = _matrix(tmp_path)
    short, long = matrix.cells
    store = Store(tmp_path / "runs", matrix.name)
    _stored_oom(store, short)
    plan = make_plan(matrix, matrix.cells, store, set())
    result = run_plan(plan, LocalProcessExecutor(command=fake_command))
    assert not starts.exists()  # no cell process started
    summary = read_summary(store.cell_dir(long.cell_id) / "summary.json")
    assert summary["outcome"] == "skipped" and summary["written_by"] == "runner"
    assert summary["error"]["message"] == f"predicted OOM, see cell {short.cell_id}"
    assert result.outcomes() == ["oom", "skipped"]
    word, rest = cell_line(long, summary, "long")
    assert word == "skipped" and f"(predicted OOM, see cell {short.cell_id})" in rest
    shown = outcome(CellResult(cell_id=long.cell_id, axes={}, summary=summary))
    assert shown == f"skipped (predicted OOM, see cell {short.cell_id})"
    # a resume leaves it; `--rerun skipped` tries again (and skips it again: still predicted)
    assert make_plan(matrix, matrix.cells, store, set()).count("run") == 0
    assert make_plan(matrix, matrix.cells, store, {"skipped"}).count("run") == 1


def test_without_the_key_or_a_predictor_the_cell_runs(tmp_path, fake_command):
    matrix = _matrix(tmp_path, skip_predicted_oom=False)
    short, _ = matrix.cells
    store = Store(tmp_path / "runs", matrix.name)
    _stored_oom(store, short)
    result = run_plan(
        make_plan(matrix, matrix.cells, store, set()), LocalProcessExecutor(command=fake_command)
    )
    assert result.outcomes() == ["oom", "completed"]


@pytest.fixture
def pair(tmp_path):
    short, long = _matrix(tmp_path).cells
    return copy.deepcopy(short.config), copy.deepcopy(long.config)


def test_the_prediction_needs_every_memory_setting_at_least_the_finished_ones(pair):
    old, new = pair
    assert _predicts(_oom_summary("a"), old, new)
    assert not _predicts(_oom_summary("a"), new, old)  # a shorter sequence may fit
    bigger = copy.deepcopy(new)
    bigger["runtime"]["memory_budget_gb"] = 0.6
    assert not _predicts(_oom_summary("a"), old, bigger)
    other = copy.deepcopy(new)
    other["attention"]["impl"] = "eager_dense"
    assert not _predicts(_oom_summary("a"), old, other)
    at_two = copy.deepcopy(old)
    at_two["train"]["micro_batch"] = 2  # not at micro-batch 1: a smaller one may fit
    assert not _predicts(_oom_summary("a"), at_two, new)


def test_never_when_back_off_could_still_help(pair):
    old, new = pair
    new["runtime"]["oom_backoff"] = ["micro_batch", "gradient_checkpointing"]
    assert not _predicts(_oom_summary("a"), old, new)  # checkpointing is still to try
    new["runtime"]["oom_backoff"] = ["micro_batch"]
    assert _predicts(_oom_summary("a"), old, new)
    new["runtime"]["oom_backoff"] = ["eval_batch"]
    assert not _predicts(_oom_summary("a", "eval"), old, new)  # eval batch 64 still halves
    tried = _oom_summary("a")
    settings = {"train.micro_batch": 1, "train.gradient_checkpointing": True}
    tried["attempts"] = [{"attempt": 1, "outcome": "oom", "settings": settings}]
    new["runtime"]["oom_backoff"] = ["gradient_checkpointing"]
    assert _predicts(tried, old, new)  # the finished cell already tried it
