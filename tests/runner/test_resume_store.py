"""The runner's side of resume points (``harness/runner/resume.py``): what ``Store.prepare``
keeps of a cut-short attempt, where the metrics tail of a kept metrics.jsonl starts, and how the
cell line and the report say that a cell resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.contracts import schema
from harness.contracts.store_files import atomic_write_text, write_json
from harness.runner.cell_text import outcome_details
from harness.runner.loop import MetricsTail
from harness.runner.resume import KEPT_FOR_RESUME, HeldPrefix, resume_manifest
from harness.runner.store import Store
from reports import fmt
from reports.results import CellResult

LINES = [{"kind": "train", "step": s, "loss": 1.0 / s} for s in (1, 2, 3)]


def _manifest(step: int = 2, metrics_bytes: int = 0) -> schema.ResumeManifest:
    return schema.ResumeManifest(
        step=step,
        steps_planned=10,
        config_hash="abc",
        state="state-00000002.pt",
        state_bytes=1,
        state_sha256="0" * 64,
        metrics_bytes=metrics_bytes,
    )


def _attempt(store: Store, outcome: str | None, manifest: bool = True) -> Path:
    """A cell folder as a cut-short attempt leaves it."""
    cell = store.cell_dir("c1")
    (cell / schema.CKPT_DIR).mkdir(parents=True)
    (cell / schema.CKPT_DIR / "best.safetensors").write_text("w")
    (cell / schema.METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in LINES))
    (cell / schema.PREDICTIONS_FILE).write_text("p\n")
    (cell / schema.LOG_FILE).write_text("log\n")
    if manifest:
        write_json(cell / schema.RESUME_DIR / schema.RESUME_MANIFEST, _manifest())
    if outcome:
        write_json(
            cell / schema.SUMMARY_FILE, schema.Summary(outcome=outcome, cell_id="c1", seed=0)
        )
    return cell


@pytest.mark.parametrize("outcome", [None, "interrupted", "timeout", "failed"])
def test_a_cut_short_attempt_keeps_its_resume_point(tmp_path, outcome):
    store = Store(tmp_path, "m")
    cell = store.prepare(_attempt(store, outcome).name)
    names = {p.name for p in cell.iterdir()}
    rotated = {"cell.log.1"} | ({"summary.json.1"} if outcome else set())
    assert names == set(KEPT_FOR_RESUME) | rotated
    assert resume_manifest(cell)["step"] == 2


def test_a_completed_cell_run_again_trains_anew(tmp_path):
    store = Store(tmp_path, "m")
    cell = store.prepare(_attempt(store, "completed").name)
    assert {p.name for p in cell.iterdir()} == {"cell.log.1", "summary.json.1"}


def test_without_a_resume_point_the_folder_is_cleared_as_before(tmp_path):
    store = Store(tmp_path, "m")
    cell = store.prepare(_attempt(store, None, manifest=False).name)
    assert {p.name for p in cell.iterdir()} == {"cell.log.1"}


def test_an_unreadable_manifest_is_kept_for_the_cell_to_report(tmp_path):
    store = Store(tmp_path, "m")
    cell = _attempt(store, None)
    (cell / schema.RESUME_DIR / schema.RESUME_MANIFEST).write_text("{")
    store.prepare(cell.name)
    assert (cell / schema.RESUME_DIR / schema.RESUME_MANIFEST).exists()
    assert resume_manifest(cell) is None


def test_the_tail_of_a_kept_file_reads_only_what_the_resumed_attempt_adds(tmp_path):
    path = tmp_path / schema.METRICS_FILE
    text = "".join(json.dumps(r) + "\n" for r in LINES)
    path.write_text(text)
    kept = len("".join(json.dumps(r) + "\n" for r in LINES[:2]))
    tail = MetricsTail(path, HeldPrefix(path, {"metrics_bytes": kept}))
    assert tail.read_new() == []  # the earlier attempt's file: step 3 is about to be cut
    new = {"kind": "train", "step": 3, "loss": 0.25}
    atomic_write_text(path, text[:kept] + json.dumps(new) + "\n")  # the cell's cut + a step
    assert tail.read_new() == [new]


def test_the_tail_reads_from_0_when_the_cell_trained_from_step_0(tmp_path):
    path = tmp_path / schema.METRICS_FILE
    path.write_text("".join(json.dumps(r) + "\n" for r in LINES))
    kept = len(json.dumps(LINES[0]) + "\n")
    tail = MetricsTail(path, HeldPrefix(path, {"metrics_bytes": kept}))
    fresh = {"kind": "train", "step": 1, "loss": 9.0}
    atomic_write_text(path, json.dumps(fresh) + "\n")
    assert tail.read_new() == [fresh]


RESUMED = {
    "outcome": "completed",
    "metrics": {"exact_match": 0.5},
    "train": {"resumed_at": 400, "steps_planned": 700, "steps": 700, "stop_reason": "budget"},
}


def test_the_cell_line_and_the_report_say_where_a_cell_resumed():
    assert outcome_details(RESUMED, 700) == "exact match 50.0% · resumed at step 400/700"
    assert outcome_details(RESUMED, 700, brief=True) == ""  # the table: its score column
    assert (
        fmt.outcome(CellResult("c1", {}, summary=RESUMED)) == "completed; resumed at step 400/700"
    )
    fresh = {**RESUMED, "train": {**RESUMED["train"], "resumed_at": None}}
    assert fmt.outcome(CellResult("c1", {}, summary=fresh)) == "completed"
    noted = {**fresh, "train": {**fresh["train"], "resume_note": "resume point not used, ..."}}
    assert outcome_details(noted, 700).endswith("resume point not used, trained from step 0")
