"""What ``benchmark`` shows while it runs (stderr) and the side-by-side table at the end (stdout).

Progress bars only on a terminal; elsewhere (logs, CI, a pipe) one plain line per phase.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from harness.benchmark.render import UNCHANGED_TITLE
from harness.benchmark.sides import Tick
from harness.benchmark.tasks import task_spec
from reports import fmt


class Terminal:
    """Phase lines and progress bars on stderr; ``quiet`` shows nothing but errors."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.err = Console(stderr=True, highlight=False)
        self.out = Console(highlight=False)
        if quiet or not self.err.is_terminal:  # no weight-loading bars in logs and pipes
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()

    def say(self, text: str) -> None:
        """One line about what is happening."""
        if not self.quiet:
            self.err.print(text, markup=False, soft_wrap=True)

    @contextmanager
    def spinner(self, label: str) -> Iterator[None]:
        """A spinner while something of unknown length runs (a download, a load)."""
        if self.quiet or not self.err.is_terminal:
            self.say(f"{label} ...")
            yield
            return
        with self.err.status(label):
            yield

    @contextmanager
    def progress(self, label: str, total: int, unit: str = "samples") -> Iterator[Tick]:
        """A progress bar with ``unit``/s and the time left (a terminal), or a start line and
        an end line with the rate (anything else); yields ``tick(n)``."""
        if self.quiet or not self.err.is_terminal:
            self.say(f"{label} ...")
            done = [0]
            start = time.perf_counter()
            yield lambda n: done.__setitem__(0, done[0] + n)
            took = time.perf_counter() - start
            self.say(f"{label}: {done[0]} {unit} in {took:.1f} s ({rate(done[0], took, unit)})")
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(unit),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.err) as bar:
            task = bar.add_task(label, total=total)
            yield lambda n: bar.advance(task, n)

    def table(self, results: dict[str, Any], report: str, json_path: str) -> None:
        """Base and trained side by side, the unchanged warning, and where the files went."""
        if self.quiet:
            return
        if results["proof"]["unchanged"]:
            self.out.print(f"[bold red]{UNCHANGED_TITLE}: the checkpoint changed nothing.[/]")
        metrics, cmp = results["metrics"], results["comparison"]
        unit = task_spec(results["task"]).unit
        table = Table(title=f"benchmark: {results['task']} on {results['data']['n']} {unit}")
        for col in ("metric", "base", "trained", "Δ (95% CI), test"):
            table.add_column(col)
        for label, base, trained, delta in _rows(results["task"], metrics, cmp):
            table.add_row(label, base, trained, delta)
        self.out.print(table)
        self.out.print(f"report: {report}\nresults: {json_path}", markup=False, soft_wrap=True)


def rate(n: float, seconds: float, unit: str) -> str:
    """``12.3 samples/s`` (``-`` before anything is done)."""
    if seconds <= 0 or n <= 0:
        return f"- {unit}/s"
    per_s = n / seconds
    return f"{per_s:.2f} {unit}/s" if per_s < 10 else f"{per_s:.0f} {unit}/s"


class RateColumn(ProgressColumn):
    """Items per second of a progress bar (rich's running average)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text(rate(speed or 0.0, 1.0, self.unit), style="progress.data.speed")


def _rows(task: str, metrics: dict, cmp: dict | None) -> list[tuple[str, str, str, str]]:
    b, t = metrics["base"] or {}, metrics["trained"]
    delta = fmt.DASH
    if cmp is not None:
        lo, hi = cmp["ci95"]
        if not task_spec(task).score_is_rate:
            delta = f"{cmp['diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        else:
            delta = f"{fmt.pts(cmp['diff'])} {fmt.pts_interval(lo, hi)}"
        delta += f", {cmp['test'].split(' ')[0]} {fmt.pvalue(cmp['p_value'])}"
    return task_spec(task).table_rows(b, t, delta)
