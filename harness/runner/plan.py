"""Plan a matrix against the run store: which cells run, which are done or running elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.contracts.outcomes import runs_again
from harness.runner.matrix import Cell, Matrix
from harness.runner.store import CellState, Store


@dataclass
class PlannedCell:
    cell: Cell
    action: str
    """`run`, `done` (has a summary; skipped), `running` (locked by another runner) or
    `skipped` (pending, but past ``--max-cells``)."""
    previous: str | None = None
    """Outcome already in the store, if any."""
    mtime_ns: int | None = None


@dataclass
class Plan:
    matrix: Matrix
    store: Store
    cells: list[PlannedCell]

    def count(self, action: str) -> int:
        return sum(p.action == action for p in self.cells)

    def to_json(self) -> dict[str, Any]:
        return {
            "matrix": self.matrix.name,
            "source": self.matrix.source,
            "store": str(self.store.matrix_dir),
            "total": len(self.cells),
            "to_run": self.count("run"),
            "done": self.count("done"),
            "running_elsewhere": self.count("running"),
            "skipped": self.count("skipped"),
            "duplicates_merged": self.matrix.duplicates,
            "cells": [
                {
                    "cell_id": p.cell.cell_id,
                    "action": p.action,
                    "previous": p.previous,
                    "axes": p.cell.axes,
                    "repeat": p.cell.repeat,
                }
                for p in self.cells
            ],
        }


def make_plan(
    matrix: Matrix, cells: list[Cell], store: Store, rerun: set[str], max_cells: int | None = None
) -> Plan:
    """Decide per cell: run it, or skip it (done, or running in another runner)."""
    states = store.scan()
    planned: list[PlannedCell] = []
    budget = max_cells
    for cell in cells:
        state = states.get(cell.cell_id) or CellState(cell.cell_id, None, False)
        prev = state.outcome
        action = "run" if runs_again(prev, rerun) else "done"
        if action == "run" and store.is_locked(cell.cell_id):
            action = "running"
        if action == "run" and budget is not None:
            action = "run" if budget > 0 else "skipped"
            budget -= 1
        planned.append(PlannedCell(cell, action, prev, state.mtime_ns))
    return Plan(matrix, store, planned)
