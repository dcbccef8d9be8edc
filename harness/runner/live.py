"""The live display on a terminal: one line for the matrix, one per running cell.

```
cells ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  1/3 done · 1 running · 0:42 · ETA ~1:10
  prefix·sdpa | ga8   ━━━━━━━━━╸━━━━━━━━  241/400  loss 1.2345  0:31  ETA 0:20
```

A finished cell leaves one line above the display (``cell_text.cell_line``). Only cells with a
result count as done; an interrupted cell is reported as such and runs again on resume. The
display is drawn from the runner's poll loop (``refresh``): rich's ``Live`` runs without its
refresh thread. Widths follow the terminal: at 80 columns the labels are elided, never wrapped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from harness.contracts.labels import elide
from harness.contracts.outcomes import FINISHED_OUTCOMES
from harness.runner.cell_text import OUTCOME_STYLE, cell_line, duration, label_of
from harness.runner.matrix import Cell

MIN_BAR = 8
MAX_BAR = 40
MIN_LABEL = 12
REST_MIN = 36
"""Columns kept for loss, elapsed and ETA (the matrix's counts), so the bars do not jump."""
ECHO_ROOM = 3
"""Columns left free at the right: the terminal echoes ``^C`` after the last line, and a full
line would wrap and leave a stale copy of the display behind."""


@dataclass
class Running:
    """What the display knows about one running cell."""

    label: str
    total: int
    started: float
    step: int = 0
    loss: float | None = None
    first: tuple[float, int] | None = None
    """(time, step) of the first train record: the rate is measured from there."""
    last: float = 0.0
    evaluating: bool = False
    time_cap: float | None = None
    """``train.max_seconds``: training stops there whatever the steps."""
    phase: str = ""
    """A cluster job's phase before its first step (``queued``, ``running``); empty locally."""

    def eta(self) -> float | None:
        """Seconds to the end of training at the rate seen so far, or to the time cap if that
        comes first (None before two train records)."""
        if self.first is None or self.step <= self.first[1] or self.last <= self.first[0]:
            return None
        rate = (self.step - self.first[1]) / (self.last - self.first[0])
        eta = max(self.total - self.step, 0) / rate
        if self.time_cap:
            eta = min(eta, max(self.time_cap - (self.last - self.first[0]), 0.0))
        return eta


class LiveProgress:
    """The live display; ``labels`` maps cell id -> short label, ``clock`` is for tests."""

    def __init__(
        self,
        console: Console,
        labels: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console, self.labels, self.clock = console, labels, clock
        self.running: dict[str, Running] = {}
        self.total = self.done = self.interrupted = 0
        self.durations: list[float] = []
        self.started = clock()
        self.live = Live(
            console=console, auto_refresh=False, get_renderable=self._render, transient=False
        )

    def start(self, to_run: int) -> None:
        self.total, self.started = to_run, self.clock()
        self.live.start(refresh=True)

    def cell_start(self, cell: Cell, max_steps: int) -> None:
        run = Running(label_of(self.labels, cell), max_steps, self.clock())
        cap = (cell.config.get("train") or {}).get("max_seconds")
        run.time_cap = float(cap) if isinstance(cap, int | float) and cap > 0 else None
        self.running[cell.cell_id] = run
        self.live.refresh()

    def record(self, cell: Cell, record: dict[str, Any]) -> None:
        run = self.running.get(cell.cell_id)
        if run is None:
            return
        now = self.clock()
        if record.get("kind") == "train" and isinstance(record.get("step"), int):
            run.step, run.last = record["step"], now
            if run.first is None:
                run.first = (now, run.step)
            loss = record.get("loss")
            run.loss = loss if isinstance(loss, int | float) else run.loss
            run.evaluating = run.step >= run.total
        elif record.get("kind") == "eval":
            run.evaluating = run.step >= run.total

    def cell_phase(self, cell: Cell, phase: str) -> None:
        """A cluster job's phase (Slurm: `submitting`, `queued`, `running`, `done`)."""
        run = self.running.get(cell.cell_id)
        if run is not None:
            run.phase = phase

    def refresh(self) -> None:
        self.live.refresh()

    def cell_end(self, cell: Cell, summary: dict[str, Any]) -> None:
        run = self.running.pop(cell.cell_id, None)
        outcome = str(summary.get("outcome"))
        wall = self.clock() - run.started if run else None
        if outcome in FINISHED_OUTCOMES:
            self.done += 1
            self.durations.append(wall or 0.0)
            count = f"{self.done}/{self.total}"
        else:
            self.interrupted += outcome == "interrupted"
            count = "-/" + str(self.total)
        label = run.label if run else label_of(self.labels, cell)
        word, rest = cell_line(cell, summary, label, count, wall, run.step if run else None)
        style = OUTCOME_STYLE.get(outcome, "white")
        line = Text(word, style=style) + Text("  " + rest)
        self.live.console.print(line, no_wrap=True, overflow="ellipsis", soft_wrap=False)
        self.live.refresh()

    def message(self, text: str) -> None:
        self.live.console.print(Text(text), no_wrap=True, overflow="ellipsis")

    def close(self) -> None:
        self.live.refresh()
        self.live.stop()

    # ------------------------------------------------------------------ rendering

    def _matrix_eta(self) -> float | None:
        """From the mean duration of the finished cells: what the running ones still need, plus
        the waiting ones spread over as many lanes as run now."""
        if not self.durations:
            return None
        mean = sum(self.durations) / len(self.durations)
        now = self.clock()
        left = max([mean - (now - r.started) for r in self.running.values()], default=0.0)
        waiting = max(self.total - self.done - self.interrupted - len(self.running), 0)
        return max(left, 0.0) + mean * waiting / max(len(self.running), 1)

    def _status(self) -> str:
        parts = ["done"]
        queued = sum(r.phase in ("queued", "submitting") for r in self.running.values())
        if len(self.running) > queued:
            parts.append(f"{len(self.running) - queued} running")
        if queued:
            parts.append(f"{queued} queued")
        if self.interrupted:
            parts.append(f"{self.interrupted} interrupted")
        parts.append(duration(self.clock() - self.started))
        eta = self._matrix_eta()
        if eta is not None and self.done < self.total and not self.interrupted:
            parts.append(f"ETA ~{duration(eta)}")
        return " · ".join(parts)

    def _row(self, r: Running, now: float) -> tuple[str, int, int, str]:
        loss = f"loss {r.loss:.4f}" if r.loss is not None else "loss -"
        eta = r.eta()
        when = f"ETA {duration(eta)}" if eta is not None else "ETA -:--"
        waiting = r.phase if r.phase in ("submitting", "queued") else "starting"
        when = "evaluating" if r.evaluating else waiting if r.first is None else when
        return r.label, r.step, r.total, f"{loss}  {duration(now - r.started)}  {when}"

    def _render(self) -> RenderableType:
        """One grid, so that the bars line up: the matrix first, then each running cell."""
        now = self.clock()
        rows = [("cells", self.done, self.total, self._status())]
        rows += [self._row(r, now) for r in self.running.values()]
        width = self.console.width - ECHO_ROOM
        step_w = max(len(f"{total}/{total}") for _, _, total, _ in rows)
        known = [*(self.labels or {}).values(), *(label for label, *_ in rows)]
        label_w = max(map(len, known))  # every label of the matrix: the bars stay put
        fixed = step_w + 3 + 1  # three gaps between the four columns, the label's indent
        rest_w = max(REST_MIN, *(len(rest) for *_, rest in rows))
        rest_w = min(rest_w, width - fixed - MIN_LABEL - MIN_BAR)
        room = width - fixed - rest_w
        label_w = min(label_w, max(MIN_LABEL, room - MIN_BAR))  # the label before the bar
        bar_w = max(MIN_BAR, min(MAX_BAR, room - label_w))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=label_w + 1, no_wrap=True)
        grid.add_column(width=bar_w, no_wrap=True)
        grid.add_column(width=step_w, justify="right", no_wrap=True)
        grid.add_column(width=rest_w, no_wrap=True, overflow="ellipsis")
        for i, (label, done, total, rest) in enumerate(rows):
            name = Text("cells", style="bold") if i == 0 else Text(" " + elide(label, label_w))
            bar = ProgressBar(total=max(total, 1), completed=done, width=bar_w)
            grid.add_row(
                name, bar, f"{done}/{total}", Text(rest, no_wrap=True, overflow="ellipsis")
            )
        return grid
