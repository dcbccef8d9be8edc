"""Cells that ran with other settings than they asked for (``runtime.oom_backoff``), in words.

A rescued cell's outcome is ``completed`` with the substitution beside it (``completed
(micro_batch 4 -> 1 after OOM)``); a comparison whose two sides ran with different effective
settings says so. A smaller micro-batch with a larger ``train.grad_accum`` sees the same samples
per optimizer step and the same loss scaling, but is not bit-identical: each micro-batch is
padded to its own longest sample and dropout draws differ (README "Out-of-memory back-off"
gives the measured size of the difference on the demo model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.contracts.attempts import effective_settings, substitution
from reports.results import CellResult


def effective(cell: CellResult) -> dict[str, Any]:
    """The settings the cell's result was produced with (its config's, without back-off)."""
    recorded = (cell.summary or {}).get("effective")
    return dict(recorded) if recorded else effective_settings(cell.config or {})


def substituted(cell: CellResult) -> str | None:
    """``micro_batch 4 -> 1 after OOM`` for a rescued cell, else None."""
    return substitution(cell.summary or {}) if cell.outcome == "completed" else None


def comparison_note(side_a: Sequence[CellResult], side_b: Sequence[CellResult]) -> str:
    """A sentence when the two sides ran with different effective settings where their configs
    ask for the same (back-off changed one side, or both differently), else ""."""
    keys: set[str] = set()
    for a in side_a:
        for b in side_b:
            ran_a, ran_b = effective(a), effective(b)
            asked_a, asked_b = (
                effective_settings(a.config or {}),
                effective_settings(b.config or {}),
            )
            keys |= {k for k in ran_a if ran_a[k] != ran_b.get(k) and asked_a[k] == asked_b.get(k)}
    if not keys:
        return ""
    shown = "; ".join(
        f"`{c.cell_id}`: {substituted(c)}" for c in (*side_a, *side_b) if substituted(c)
    )
    return (
        f" The two sides ran with different effective settings ({shown}): the same samples per "
        "optimizer step and loss scaling, but not bit-identical (each micro-batch is padded to "
        "its own longest sample; dropout draws differ)."
    )
