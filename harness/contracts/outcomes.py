"""What a cell's outcome means, written once for the cell, which records it, and the runner,
which writes a summary in the cell's place, plans reruns and shows progress.

- ``FINISHED_OUTCOMES``: a cell with one of these is done; resuming skips it unless ``--rerun``
  names its outcome (``RERUN_CHOICES``). An ``interrupted`` cell is not finished: it always runs
  again (``runs_again``).
- ``RESULT_OUTCOMES``: the cell ran to a result (an OOM is a result); the cell exits 0.
- ``continues_from_resume_point``: whether a cell's next attempt may continue from the resume
  point its last attempt left (``checkpoint.resume_every``).
- ``stop_reason``: why training stopped, from the outcome, when the training loop did not end by
  itself (``schema.STOP_REASONS``).
- ``samples_planned``: the sample budget a config asks for.
- ``now_iso``: the one format of a time in the run store (UTC, seconds).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from harness.contracts.schema import OUTCOMES

RERUN_OUTCOMES: tuple[str, ...] = ("failed", "oom", "timeout", "diverged", "skipped")
"""Finished outcomes besides ``completed`` that ``--rerun OUTCOME`` runs again."""
RERUN_CHOICES: tuple[str, ...] = (*RERUN_OUTCOMES, "all")
"""``--rerun`` values: one of ``RERUN_OUTCOMES``, or ``all`` (completed cells too)."""
FINISHED_OUTCOMES = frozenset({"completed", *RERUN_OUTCOMES})
"""Outcomes that count as done."""
UNFINISHED_OUTCOMES = frozenset(OUTCOMES) - FINISHED_OUTCOMES
"""``interrupted``: the cell runs again on resume, whatever ``--rerun`` says."""
RESULT_OUTCOMES = FINISHED_OUTCOMES - {"failed", "skipped"}
"""The cell ran to a result (its exit status 0); ``failed`` and ``interrupted`` exit 1
(``skipped`` is the runner's: a predicted OOM the cell never ran)."""

KEEPS_RESUME_POINT = frozenset({"interrupted", "timeout"})
"""Outcomes after which the cell keeps its resume point for the next attempt (any other ending
it writes removes it)."""

_STOP_BY_OUTCOME = {
    "oom": "oom",
    "diverged": "diverged",
    "timeout": "timeout",
    "interrupted": "interrupted",
}


def runs_again(previous: str | None, rerun: Collection[str]) -> bool:
    """Whether a cell whose stored outcome is ``previous`` (None: no summary) runs in a plan
    with these ``--rerun`` values."""
    if previous is None or previous in UNFINISHED_OUTCOMES:
        return True
    return "all" in rerun or previous in rerun


def continues_from_resume_point(previous: str | None) -> bool:
    """Whether the next attempt of a cell whose stored outcome is ``previous`` (None: no summary,
    a killed runner) continues from the resume point the last attempt left, where it left one:
    always but after ``completed`` (``--rerun all`` trains anew). The cell removes its own point
    when it ends by itself with a result (completed, oom, diverged) or ``failed``; one left
    beside such an outcome is an attempt cut short from outside: ``interrupted``, ``timeout``,
    or ``failed`` as the runner records a kill or a lost worker."""
    return previous != "completed"


def stop_reason(outcome: str) -> str:
    """Why training stopped when the loop did not end by itself (``budget``, ``time_cap``):
    the outcome's own reason, else ``error`` (a crash, an unknown signal)."""
    return _STOP_BY_OUTCOME.get(outcome, "error")


def samples_planned(max_steps: int, micro_batch: int, grad_accum: int) -> int:
    """The samples a config's training budget asks for (each step: micro_batch x grad_accum)."""
    return max_steps * micro_batch * grad_accum


def now_iso() -> str:
    """The current time as the run store writes it (``2026-01-31T12:00:00+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
