"""An OOM cell and a failed cell are finished W&B runs whose summary says what happened."""

from __future__ import annotations

import pytest
import yaml

from harness.runner import make_plan, run_plan
from harness.runner.executor import LocalProcessExecutor
from harness.runner.matrix import build_matrix
from harness.runner.store import Store
from harness.runner.tracking import TrackingConfig
from harness.runner.wandb_tracker import make_tracker, resolve_tracking

from .conftest import SMOKE, read_offline_runs


@pytest.mark.slow
def test_oom_and_failed_cells_are_finished_runs_with_their_outcomes(tmp_path, home):
    base = yaml.safe_load(SMOKE.read_text())["base"]
    base["data"]["cache_dir"] = str(tmp_path / "data")
    missing = str(tmp_path / "nope.jsonl")
    raw = {
        "name": "outcomes",
        "base": base,
        "include": [
            # micro_batch 128 needs well over 0.45 GB on top of the ~0.35 GB of torch itself
            {"runtime.memory_budget_gb": 0.45, "train.micro_batch": 128},
            {"data.kind": "jsonl", "data.train_path": missing, "data.val_path": missing},
        ],
    }
    matrix = build_matrix(raw, "outcomes.yaml", [])
    store = Store(tmp_path / "runs", matrix.name)
    store.ensure_writable()
    said: list[str] = []
    settings = resolve_tracking(TrackingConfig(mode="offline"))
    tracker = make_tracker(settings, store.root, store.matrix_dir, said.append)
    try:
        result = run_plan(
            make_plan(matrix, matrix.cells, store, set()), LocalProcessExecutor(), tracker=tracker
        )
    finally:
        tracker.close()
    assert said == []
    (_, oom, _), (_, failed, _) = result.rows
    assert (oom["outcome"], failed["outcome"]) == ("oom", "failed"), (oom, failed)
    runs = read_offline_runs(store.root / "wandb", tmp_path)
    assert sorted(runs) == sorted(c.cell_id for c in matrix.cells)
    oom_run, failed_run = runs[oom["cell_id"]], runs[failed["cell_id"]]
    for run, summary in ((oom_run, oom), (failed_run, failed)):
        assert run.exit_code == 0  # finished, not crashed: the outcome is the result
        assert run.summary["outcome"] == summary["outcome"]
        assert summary["outcome"] in run.tags
    assert oom_run.summary["oom/phase"] == oom["oom"]["phase"]
    assert oom_run.summary["oom/budget_bytes"] == int(0.45 * 2**30)
    assert oom_run.summary["oom/in_use_bytes"] == oom["oom"]["in_use_bytes"]
    assert "allocate" in oom_run.summary["oom/message"]
    assert failed_run.summary["error/type"] == "DataError"
    assert "nope.jsonl" in failed_run.summary["error/message"]
    assert "error/log_tail" not in failed_run.summary  # long texts stay in summary.json
    assert "metrics/exact_match" not in oom_run.summary and not oom_run.artifacts
