"""What the user sees while a matrix runs (stderr) and the summary table at the end (stdout).

``make_progress`` picks a live display on a terminal (``harness/runner/live.py``), one plain line
per cell start and end otherwise, and nothing with ``--quiet``. Every display is keyed by cell,
so several cells can run at once. No display uses a background thread: the runner refreshes it
from its poll loop, which keeps ``fork`` of cell processes safe.

Cells are named by a short label built from the axes that vary (``harness/runner/cell_text.py``),
e.g. ``causal·sdpa | ga4``; the cell id stays at the end of each line, to find its folder.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Protocol

from rich import box
from rich.console import Console
from rich.table import Table

from harness.contracts.outcomes import FINISHED_OUTCOMES
from harness.runner.cell_text import (
    OUTCOME_STYLE,
    cell_labels,
    cell_line,
    label_of,
    outcome_details,
    planned_steps,
)
from harness.runner.live import LiveProgress
from harness.runner.matrix import Cell


class Progress(Protocol):
    def start(self, to_run: int) -> None: ...
    def cell_start(self, cell: Cell, max_steps: int) -> None: ...
    def record(self, cell: Cell, record: dict[str, Any]) -> None: ...
    def refresh(self) -> None: ...
    def cell_end(self, cell: Cell, summary: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


def make_progress(
    quiet: bool = False, stream: Any = None, labels: Mapping[str, str] | None = None
) -> Progress:
    """The display for ``stream`` (default stderr); ``labels``: cell id -> short label."""
    stream = stream or sys.stderr
    if quiet:
        return QuietProgress()
    if stream.isatty():
        return LiveProgress(Console(file=stream), labels)
    return PlainProgress(stream, labels)


class QuietProgress:
    def start(self, to_run: int) -> None: ...
    def cell_start(self, cell: Cell, max_steps: int) -> None: ...
    def record(self, cell: Cell, record: dict[str, Any]) -> None: ...
    def refresh(self) -> None: ...
    def cell_end(self, cell: Cell, summary: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


class PlainProgress(QuietProgress):
    """One line when a cell starts and one when it ends (logs, CI, pipes)."""

    def __init__(self, stream: Any, labels: Mapping[str, str] | None = None) -> None:
        self.stream, self.labels = stream, labels
        self.done = self.total = 0
        self.steps: dict[str, int] = {}

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, to_run: int) -> None:
        self.total = to_run

    def cell_start(self, cell: Cell, max_steps: int) -> None:
        label = label_of(self.labels, cell)
        self._print(f"started  {label}  ({max_steps} steps)  {cell.cell_id}")

    def record(self, cell: Cell, record: dict[str, Any]) -> None:
        if record.get("kind") == "train" and isinstance(record.get("step"), int):
            self.steps[cell.cell_id] = record["step"]

    def cell_end(self, cell: Cell, summary: dict[str, Any]) -> None:
        finished = summary.get("outcome") in FINISHED_OUTCOMES
        self.done += finished
        count = f"[{self.done}/{self.total}]" if finished else f"[-/{self.total}]"
        steps = self.steps.pop(cell.cell_id, None)
        word, rest = cell_line(cell, summary, label_of(self.labels, cell), count, steps=steps)
        self._print(f"{word}  {rest}")

    def message(self, text: str) -> None:
        self._print(text)

    def close(self) -> None:
        if self.total:
            self._print(f"{self.done}/{self.total} cells done")


def _mem(summary: dict[str, Any]) -> str:
    memory = summary.get("memory") or {}
    peaks = [(memory.get(p) or {}).get("peak_bytes") for p in ("train", "eval")]
    peaks = [p for p in peaks if isinstance(p, int | float)]
    return f"{max(peaks) / 2**30:.2f} GiB" if peaks else "-"


def summary_table(
    rows: list[tuple[Cell, dict[str, Any] | None, str]], labels: Mapping[str, str] | None = None
) -> Table:
    """The end-of-run table: cell, configuration, outcome (with a shortfall or the OOM phase),
    exact match, peak memory, wall time."""
    labels = labels or cell_labels([cell for cell, _, _ in rows])
    table = Table(
        title="matrix summary", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    table.add_column("cell", no_wrap=True)
    table.add_column("configuration", no_wrap=True, overflow="ellipsis", ratio=2)
    table.add_column("outcome", overflow="fold", ratio=3)
    table.add_column("exact\nmatch", justify="right", no_wrap=True)
    table.add_column("peak\nmemory", justify="right", no_wrap=True)
    table.add_column("wall", justify="right", no_wrap=True)
    for cell, summary, status in rows:
        s = summary or {}
        outcome = str(s.get("outcome") or status)
        em = (s.get("metrics") or {}).get("exact_match")
        wall = (s.get("timings") or {}).get("wall_s")
        style = OUTCOME_STYLE.get(outcome, "white")
        word = "OOM" if outcome == "oom" else outcome
        details = outcome_details(s, planned_steps(cell), brief=True) if s else ""
        if not s and status == "skipped":  # the plan's action, not the `skipped` outcome
            word, style, details = "not run", "dim", "--max-cells"
        table.add_row(
            cell.cell_id,
            label_of(labels, cell),
            f"[{style}]{word}[/{style}]" + (f" ({details})" if details else ""),
            f"{100 * em:.1f}%" if isinstance(em, int | float) else "-",
            _mem(s),
            f"{wall:.1f}s" if isinstance(wall, int | float) else "-",
        )
    return table
