"""One definition of what an outcome means (harness/contracts/outcomes.py), read by the cell,
the runner's summaries, the planner and the display."""

from __future__ import annotations

import re

import pytest

from harness.contracts import outcomes
from harness.contracts.schema import OUTCOMES, STOP_REASONS
from harness.runner import cell_text


def test_every_outcome_is_finished_or_runs_again_and_has_a_colour():
    assert set(OUTCOMES) == outcomes.FINISHED_OUTCOMES | outcomes.UNFINISHED_OUTCOMES
    assert {"interrupted"} == outcomes.UNFINISHED_OUTCOMES
    assert set(cell_text.OUTCOME_STYLE) == set(OUTCOMES)
    assert {"completed", "oom", "diverged", "timeout"} == outcomes.RESULT_OUTCOMES


@pytest.mark.parametrize(
    ("previous", "rerun", "again"),
    [
        (None, set(), True),
        ("interrupted", set(), True),
        ("completed", set(), False),
        ("failed", set(), False),
        ("failed", {"failed"}, True),
        ("oom", {"failed"}, False),
        ("completed", {"failed"}, False),
        ("completed", {"all"}, True),
    ],
)
def test_the_rerun_rule(previous, rerun, again):
    assert outcomes.runs_again(previous, rerun) is again


def test_each_outcome_that_stops_training_names_a_known_stop_reason():
    assert {outcomes.stop_reason(o) for o in OUTCOMES} <= set(STOP_REASONS)
    assert outcomes.stop_reason("interrupted") == "interrupted"
    assert outcomes.stop_reason("diverged") == "diverged"
    assert outcomes.stop_reason("failed") == "error"


def test_samples_planned_and_the_time_format():
    assert outcomes.samples_planned(10, 4, 8) == 320
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", outcomes.now_iso())
