"""Plan a matrix against the run store, then run each pending cell in isolation.

Every cell ends with exactly one ``summary.json`` (``harness/schema.py``): the cell writes it,
or, when the cell could not (a crash, a signal, a time limit, Ctrl-C), the runner writes it from
what the cell left behind (``metrics.jsonl``, the tail of ``cell.log``).
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.executor import CellTask, Executor
from harness.matrix import Cell, Matrix
from harness.outcomes import finalize, now_iso
from harness.progress import Progress, QuietProgress
from harness.schema import (
    CELL_FILE,
    CONFIG_FILE,
    LOG_FILE,
    METRICS_FILE,
    atomic_write_text,
    write_json,
)
from harness.store import CellState, Store
from harness.tracking import NullTracker, Tracker

RERUN_CHOICES = ("failed", "oom", "timeout", "diverged", "all")
POLL_S = 0.2
INTERRUPT_GRACE_S = 20.0
"""After Ctrl-C, how long the cell gets to write its `interrupted` summary before SIGKILL."""
TERM_GRACE_S = 5.0
"""After a time limit, how long between SIGTERM and SIGKILL."""


@dataclass
class PlannedCell:
    cell: Cell
    action: str
    """`run`, `done` (has a summary; skipped) or `running` (locked by another runner)."""
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
        again = prev is None or prev == "interrupted" or "all" in rerun or prev in rerun
        action = "run" if again else "done"
        if action == "run" and store.is_locked(cell.cell_id):
            action = "running"
        if action == "run" and budget is not None:
            action = "run" if budget > 0 else "skipped"
            budget -= 1
        planned.append(PlannedCell(cell, action, prev, state.mtime_ns))
    return Plan(matrix, store, planned)


class StopRequest:
    """Counts SIGINT/SIGTERM: the first stops cleanly, the second hard."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, frame: Any) -> None:
        self.count += 1

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopRequest]:
        old = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)


@dataclass
class RunResult:
    rows: list[tuple[Cell, dict[str, Any] | None, str]] = field(default_factory=list)
    """(cell, summary or None, status) for every planned cell, in plan order."""
    interrupted: Cell | None = None
    """The cell that was running when the run was stopped."""
    stopped: bool = False

    def outcomes(self) -> list[str]:
        return [str((s or {}).get("outcome") or st) for _, s, st in self.rows]


def run_plan(
    plan: Plan,
    executor: Executor,
    progress: Progress | None = None,
    tracker: Tracker | None = None,
    stop: StopRequest | None = None,
) -> RunResult:
    """Run every `run` cell of the plan in order; stop cleanly on a stop request."""
    progress = progress or QuietProgress()
    tracker = tracker or NullTracker()
    stop = stop or StopRequest()
    result = RunResult()
    progress.start(plan.count("run"))
    try:
        for p in plan.cells:
            if p.action != "run" or stop.count:
                summary = plan.store.read_summary(p.cell.cell_id) if p.action == "done" else None
                status = "not run" if p.action == "run" else p.action
                result.rows.append((p.cell, summary, status))
                continue
            summary, status = _run_locked(plan, p, executor, progress, tracker, stop)
            result.rows.append((p.cell, summary, status))
            if summary is not None and stop.count:
                result.interrupted = p.cell
    finally:
        progress.close()
    result.stopped = stop.count > 0
    return result


def _run_locked(
    plan: Plan,
    p: PlannedCell,
    executor: Executor,
    progress: Progress,
    tracker: Tracker,
    stop: StopRequest,
) -> tuple[dict[str, Any] | None, str]:
    lock = plan.store.try_lock(p.cell.cell_id)
    if lock is None:
        progress.message(f"{p.cell.cell_id} is running in another runner; skipped")
        return None, "running"
    with lock:
        state = plan.store.state(p.cell.cell_id)
        if state.outcome and state.mtime_ns != p.mtime_ns:  # finished by another runner
            return plan.store.read_summary(p.cell.cell_id), "done"
        summary = run_cell(p.cell, plan, executor, progress, tracker, stop)
        return summary, "ran"


def run_cell(
    cell: Cell,
    plan: Plan,
    executor: Executor,
    progress: Progress,
    tracker: Tracker,
    stop: StopRequest,
) -> dict[str, Any]:
    """Run one cell to its end and return its final summary (also written to the store)."""
    cell_dir = plan.store.prepare(cell.cell_id)
    atomic_write_text(cell_dir / CONFIG_FILE, yaml.safe_dump(cell.config, sort_keys=False))
    info = {
        "cell_id": cell.cell_id,
        "matrix": plan.matrix.name,
        "source": plan.matrix.source,
        "axes": cell.axes,
        "repeat": cell.repeat,
        "index": cell.index,
        "started_at": now_iso(),
    }
    write_json(cell_dir / CELL_FILE, info)
    _safe(tracker.on_cell_start, cell.cell_id, info, cell.config)
    progress.cell_start(cell, int(cell.config["train"]["max_steps"]))
    task = CellTask(cell.cell_id, cell_dir / CONFIG_FILE, cell_dir, cell_dir / LOG_FILE)
    started = time.monotonic()
    handle = executor.start(task)
    tail = MetricsTail(cell_dir / METRICS_FILE)
    timeout = cell.config["runtime"].get("timeout_s")
    deadline = started + timeout if timeout else None
    timed_out = interrupted = False
    kill_at: float | None = None
    while (status := handle.wait(POLL_S)) is None:
        for record in tail.read_new():
            progress.record(record)
            _safe(tracker.on_record, cell.cell_id, record)
        progress.refresh()
        now = time.monotonic()
        if stop.count and not interrupted:
            interrupted, kill_at = True, now + INTERRUPT_GRACE_S
            handle.interrupt()
        if deadline and now > deadline and not (timed_out or interrupted):
            timed_out, kill_at = True, now + TERM_GRACE_S
            handle.terminate()
        if (kill_at and now > kill_at) or stop.count > 1:
            handle.kill()
    for record in tail.read_new():
        _safe(tracker.on_record, cell.cell_id, record)
    wall = time.monotonic() - started
    summary = finalize(cell, cell_dir, info, status, timed_out, interrupted, wall)
    _safe(tracker.on_cell_end, cell.cell_id, summary)
    progress.cell_end(cell, summary)
    return summary


class MetricsTail:
    """Reads the complete lines appended to metrics.jsonl since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        out = []
        for line in chunk[:end].splitlines():
            with contextlib.suppress(ValueError):
                out.append(_loads(line))
        return out


def _loads(line: bytes) -> dict[str, Any]:
    import json

    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not a record")
    return data


def _safe(fn: Any, *args: Any) -> None:
    """Trackers never fail a cell."""
    try:
        fn(*args)
    except Exception as exc:
        print(f"warning: tracker {fn.__qualname__} failed: {exc}")
