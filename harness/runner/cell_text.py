"""How a cell is named and its ending told in one line (the live display, plain lines, the table).

A cell's label is built from the axes that vary (``harness/contracts/labels.py``), e.g. ``causal·sdpa |
ga4``; a finished cell's line says its outcome and what matters about it: the score and a
shortfall (``time cap at 241/800 steps``), the OOM phase and memory, the error's phase and type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.contracts.attempts import backoff_exhausted, substitution
from harness.contracts.labels import aligned, axes_groups, short_labels
from harness.contracts.schema import budget_shortfall, resumed_text
from harness.runner.matrix import Cell

OUTCOME_STYLE = {
    "completed": "green",
    "oom": "magenta",
    "timeout": "yellow",
    "diverged": "yellow",
    "failed": "red",
    "interrupted": "cyan",
    "skipped": "magenta",
}
"""Colour of each outcome (``schema.OUTCOMES``); which count as done is
``harness.contracts.outcomes.FINISHED_OUTCOMES``, the rule the planner also reads."""

MAX_REASON = 200
"""Characters of a failed cell's error message shown on its line (the summary has it all)."""


def cell_labels(cells: Sequence[Cell], paired: Mapping[str, Sequence[str]] | None = None) -> dict:
    """cell id -> a short label unique among ``cells`` (the axes that vary, paired axes as one;
    ``#repeat`` where only the repeat tells two cells apart)."""
    rows = aligned([axes_groups(c.axes, paired or {}) for c in cells])
    labels = short_labels(rows, empty="(base)")
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    return {
        c.cell_id: f"{label} #{c.repeat}" if seen[label] > 1 else label
        for c, label in zip(cells, labels, strict=True)
    }


def label_of(labels: Mapping[str, str] | None, cell: Cell) -> str:
    """The cell's label from ``labels``, else one built from its own axes."""
    if labels and cell.cell_id in labels:
        return labels[cell.cell_id]
    return cell_labels([cell])[cell.cell_id] if cell.axes else "(base)"


def planned_steps(cell: Cell) -> int | None:
    """The cell's ``train.max_steps``."""
    steps = (cell.config.get("train") or {}).get("max_steps")
    return steps if isinstance(steps, int) else None


def outcome_details(
    summary: dict[str, Any],
    max_steps: int | None = None,
    brief: bool = False,
    steps: int | None = None,
) -> str:
    """What a person wants to know about a finished cell beyond its outcome: the score and a
    shortfall (time cap), the OOM phase and memory, the error's phase and type and the step it
    stopped at (``steps`` when the summary does not say). ``brief`` (the summary table, which
    has a score column): no score, and the step only for an interrupted cell."""
    details = _details(summary, max_steps, brief, steps)
    resumed = "" if brief else resumed_text(summary)
    return " · ".join(p for p in (details, resumed) if p)


def _details(summary: dict[str, Any], max_steps: int | None, brief: bool, steps: int | None) -> str:
    outcome = summary.get("outcome")
    if outcome == "completed":
        em = None if brief else (summary.get("metrics") or {}).get("exact_match")
        parts = [f"exact match {100 * em:.1f}%" if isinstance(em, int | float) else ""]
        parts.append(budget_shortfall(summary, max_steps) or "")
        parts.append(substitution(summary) or "")
        return " · ".join(p for p in parts if p)
    if outcome == "skipped":
        return f"({(summary.get('error') or {}).get('message') or 'not run'})"
    if outcome == "oom":
        oom = summary.get("oom") or {}
        used, budget = oom.get("in_use_bytes"), oom.get("budget_bytes")
        mem = f", {_gib(used)} in use" if isinstance(used, int) else ""
        mem += f" / budget {_gib(budget)}" if isinstance(budget, int) else ""
        tried = backoff_exhausted(summary)
        return f"in {oom.get('phase') or '?'}{mem}" + (f" {tried}" if tried else "")
    steps = (summary.get("train") or {}).get("steps") or steps
    at = f"at step {steps}/{max_steps}" if isinstance(steps, int) and steps and max_steps else ""
    at = "" if brief and outcome != "interrupted" else at
    return ", ".join(x for x in (error_reason(summary, outcome == "failed"), at) if x)


def error_reason(summary: dict[str, Any], message: bool = True) -> str:
    """The error's phase and type (``setup: DataError``), and with ``message`` its first line
    (``setup: DataError: data/train.jsonl:3: field 'answer' must be a string, got int``), cut
    to ``MAX_REASON`` characters."""
    error = summary.get("error") or {}
    kind = str(error.get("type") or "")
    kind = "" if kind in ("signal", "timeout", "Interrupted") else kind
    text = str(error.get("message") or "").strip().split("\n")[0] if message else ""
    text = text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"
    return ": ".join(x for x in (str(error.get("phase") or ""), kind, text) if x)


def _gib(value: int) -> str:
    return f"{value / 2**30:.2f} GiB"


def duration(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on)."""
    s = int(max(seconds, 0))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def cell_line(
    cell: Cell,
    summary: dict[str, Any],
    label: str,
    count: str = "",
    wall: float | None = None,
    steps: int | None = None,
) -> tuple[str, str]:
    """(count and outcome, the rest) of a finished cell's one line: label, details, wall time
    (the summary's, as in the table; else ``wall``), cell id."""
    outcome = str(summary.get("outcome"))
    word = "OOM" if outcome == "oom" else outcome
    own = (summary.get("timings") or {}).get("wall_s")
    wall = own if isinstance(own, int | float) else wall
    parts = [label, outcome_details(summary, planned_steps(cell), steps=steps)]
    parts += [duration(wall) if wall is not None else "", cell.cell_id]
    rest = "  ".join(p for p in parts if p)
    return (f"{count} {word}" if count else word), rest
