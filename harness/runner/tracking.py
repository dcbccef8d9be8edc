"""Tracking hooks: how the runner mirrors cells to an external tracker (W&B comes later).

The run store stays the source of truth; a tracker only receives copies, in this order per cell:
``on_cell_start`` once, ``on_record`` for each metrics.jsonl record as it appears, and
``on_cell_end`` once with the final summary (whatever the outcome). A tracker must never make a
cell fail: the runner logs and ignores its exceptions.
"""

from __future__ import annotations

from typing import Any, Protocol


class Tracker(Protocol):
    """Receives a copy of what the runner records."""

    def on_cell_start(self, cell_id: str, info: dict[str, Any], config: dict[str, Any]) -> None:
        """``info`` is the cell.json content (matrix, axes, repeat)."""

    def on_record(self, cell_id: str, record: dict[str, Any]) -> None:
        """One metrics.jsonl record (train or eval)."""

    def on_cell_end(self, cell_id: str, summary: dict[str, Any]) -> None:
        """The cell's final summary.json."""


class NullTracker:
    """Tracks nothing (the default)."""

    def on_cell_start(self, cell_id: str, info: dict[str, Any], config: dict[str, Any]) -> None:
        pass

    def on_record(self, cell_id: str, record: dict[str, Any]) -> None:
        pass

    def on_cell_end(self, cell_id: str, summary: dict[str, Any]) -> None:
        pass
