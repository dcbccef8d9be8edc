"""What the user sees while a matrix runs (stderr) and the summary table at the end (stdout).

``make_progress`` picks a live rich display on a terminal, one plain line per cell otherwise,
and nothing with ``--quiet``. No display uses a background thread: the runner refreshes it from
its poll loop, which keeps ``fork`` of cell processes safe.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichBar
from rich.table import Table

from harness.runner.matrix import Cell

OUTCOME_STYLE = {
    "completed": "green",
    "oom": "magenta",
    "timeout": "yellow",
    "diverged": "yellow",
    "failed": "red",
    "interrupted": "cyan",
}


class Progress(Protocol):
    def start(self, to_run: int) -> None: ...
    def cell_start(self, cell: Cell, max_steps: int) -> None: ...
    def record(self, cell: Cell, record: dict[str, Any]) -> None: ...
    def refresh(self) -> None: ...
    def cell_end(self, cell: Cell, summary: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


def make_progress(quiet: bool = False, stream: Any = None) -> Progress:
    stream = stream or sys.stderr
    if quiet:
        return QuietProgress()
    if stream.isatty():
        return LiveProgress(Console(file=stream))
    return PlainProgress(stream)


def cell_line(cell: Cell, summary: dict[str, Any]) -> str:
    """One line for a finished cell: id, outcome, key metric, axes."""
    em = (summary.get("metrics") or {}).get("exact_match")
    score = f" exact_match={em:.3f}" if isinstance(em, int | float) else ""
    wall = (summary.get("timings") or {}).get("wall_s")
    took = f" in {wall:.1f}s" if isinstance(wall, int | float) else ""
    return f"{cell.cell_id} {summary.get('outcome')}{score}{took}  [{cell.label}]"


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

    def __init__(self, stream: Any) -> None:
        self.stream, self.done, self.total = stream, 0, 0

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, to_run: int) -> None:
        self.total = to_run

    def cell_start(self, cell: Cell, max_steps: int) -> None:
        self._print(f"[{self.done + 1}/{self.total}] {cell.cell_id} started  [{cell.label}]")

    def cell_end(self, cell: Cell, summary: dict[str, Any]) -> None:
        self.done += 1
        self._print(f"[{self.done}/{self.total}] {cell_line(cell, summary)}")

    def message(self, text: str) -> None:
        self._print(text)


class LiveProgress(QuietProgress):
    """Rich bars: cells done/total with ETA, and the current cell's axes, step, loss, ETA."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = RichBar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=console,
            auto_refresh=False,
        )
        self.cells_task = self.bar.add_task("cells", total=0, info="")
        self.step_task: Any = None

    def start(self, to_run: int) -> None:
        self.bar.update(self.cells_task, total=to_run)
        self.bar.start()

    def cell_start(self, cell: Cell, max_steps: int) -> None:
        if self.step_task is not None:
            self.bar.remove_task(self.step_task)
        desc = f"  {cell.cell_id}"
        self.step_task = self.bar.add_task(desc, total=max_steps, info=cell.label)
        self.bar.refresh()

    def record(self, cell: Cell, record: dict[str, Any]) -> None:
        if self.step_task is None:
            return
        task = self.bar.tasks[self.step_task]
        label = task.fields["info"].split("  |")[0]
        if record.get("kind") == "train":
            info = f"{label}  | loss {record.get('loss', float('nan')):.4f}"
            self.bar.update(self.step_task, completed=record.get("step", 0), info=info)
        elif record.get("kind") == "eval":
            em = record.get("exact_match", float("nan"))
            info = f"{label}  | {record.get('split')} exact_match {em:.3f}"
            self.bar.update(self.step_task, info=info)

    def refresh(self) -> None:
        self.bar.refresh()

    def cell_end(self, cell: Cell, summary: dict[str, Any]) -> None:
        self.bar.advance(self.cells_task)
        style = OUTCOME_STYLE.get(str(summary.get("outcome")), "white")
        self.bar.console.print(
            f"[{style}]{cell_line(cell, summary)}[/{style}]", markup=True, highlight=False
        )
        self.bar.refresh()

    def message(self, text: str) -> None:
        self.bar.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        self.bar.stop()


def _mem(summary: dict[str, Any]) -> str:
    memory = summary.get("memory") or {}
    peaks = [(memory.get(p) or {}).get("peak_bytes") for p in ("train", "eval")]
    peaks = [p for p in peaks if isinstance(p, int | float)]
    return f"{max(peaks) / 2**30:.2f} GiB" if peaks else "-"


def summary_table(rows: list[tuple[Cell, dict[str, Any] | None, str]]) -> Table:
    """The end-of-run table: cell, axes, outcome, exact match, peak memory, wall time."""
    table = Table(title="matrix summary", show_lines=False)
    for col in ("cell", "axes", "outcome", "exact match", "peak mem", "wall"):
        right = col in ("exact match", "wall")
        table.add_column(
            col, justify="right" if right else "left", overflow="fold", no_wrap=col != "axes"
        )
    for cell, summary, status in rows:
        s = summary or {}
        outcome = str(s.get("outcome") or status)
        em = (s.get("metrics") or {}).get("exact_match")
        wall = (s.get("timings") or {}).get("wall_s")
        style = OUTCOME_STYLE.get(outcome, "white")
        table.add_row(
            cell.cell_id,
            cell.label,
            f"[{style}]{outcome}[/{style}]",
            f"{em:.3f}" if isinstance(em, int | float) else "-",
            _mem(s),
            f"{wall:.1f}s" if isinstance(wall, int | float) else "-",
        )
    return table
