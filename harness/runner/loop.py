"""Run each pending cell of a plan in isolation, one at a time, and supervise it.

Every cell ends with exactly one ``summary.json`` (``harness/schema.py``): the cell writes it,
or, when the cell could not (a crash, a kill, a hang past its time limit), the runner writes it
from what the cell left behind (``metrics.jsonl``, the tail of ``cell.log``). The runner writes
``config.yaml`` and ``cell.json``; the cell never does.
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

from harness.runner.executor import CellHandle, CellTask, Executor, StartFailed
from harness.runner.matrix import Cell
from harness.runner.outcomes import finalize, now_iso
from harness.runner.plan import Plan, PlannedCell
from harness.runner.progress import Progress, QuietProgress
from harness.runner.tracking import NullTracker, Tracker
from harness.schema import (
    CELL_FILE,
    CONFIG_FILE,
    LOG_FILE,
    METRICS_FILE,
    RECORD_KINDS,
    CellInfo,
    SchemaError,
)
from harness.store_files import atomic_write_text, parse_line, to_json, write_json

POLL_S = 0.2
INTERRUPT_GRACE_S = 20.0
"""After Ctrl-C, how long the cell gets to write its `interrupted` summary before SIGKILL."""
KILL_GRACE_S = 10.0
"""Past ``runtime.timeout_s`` the cell stops itself; a cell still running this much later is
killed and the runner writes its `timeout` summary."""


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
        summary = supervise_cell(p.cell, plan, executor, progress, tracker, stop)
        return summary, "ran"


def supervise_cell(
    cell: Cell,
    plan: Plan,
    executor: Executor,
    progress: Progress,
    tracker: Tracker,
    stop: StopRequest,
) -> dict[str, Any]:
    """Start one cell, follow it to its end, and return its summary (the cell's own, or the one
    the runner writes when the cell could not)."""
    cell_dir = plan.store.prepare(cell.cell_id)
    atomic_write_text(cell_dir / CONFIG_FILE, yaml.safe_dump(cell.config, sort_keys=False))
    info = CellInfo(
        cell_id=cell.cell_id,
        matrix=plan.matrix.name,
        source=plan.matrix.source,
        axes=cell.axes,
        repeat=cell.repeat,
        index=cell.index,
        started_at=now_iso(),
    )
    write_json(cell_dir / CELL_FILE, info)
    _safe(tracker.on_cell_start, cell.cell_id, to_json(info), cell.config)
    progress.cell_start(cell, int(cell.config["train"]["max_steps"]))
    task = CellTask(cell.cell_id, cell_dir / CONFIG_FILE, cell_dir, cell_dir / LOG_FILE)
    started = time.monotonic()
    try:
        handle: CellHandle = executor.start(task)
    except OSError as exc:  # the command could not start: a failed cell, and the run goes on
        handle = StartFailed(exc)
    tail = MetricsTail(cell_dir / METRICS_FILE)
    timeout = cell.config["runtime"].get("timeout_s")
    deadline = started + timeout + KILL_GRACE_S if timeout else None
    timed_out = interrupted = False
    kill_at: float | None = None
    while (status := handle.wait(POLL_S)) is None:
        for record in tail.read_new():
            progress.record(cell, record)
            _safe(tracker.on_record, cell.cell_id, record)
        progress.refresh()
        now = time.monotonic()
        if stop.count and not interrupted:
            interrupted, kill_at = True, now + INTERRUPT_GRACE_S
            handle.interrupt()
        if deadline and now > deadline and not (timed_out or interrupted):
            timed_out, kill_at = True, now
        if (kill_at and now >= kill_at) or stop.count > 1:
            handle.kill()
    for record in tail.read_new():
        _safe(tracker.on_record, cell.cell_id, record)
    wall = time.monotonic() - started
    summary = finalize(cell, cell_dir, status, timed_out, interrupted, wall, info.started_at)
    info.finished_at, info.runner_wall_s = now_iso(), round(wall, 3)
    write_json(cell_dir / CELL_FILE, info)
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
            with contextlib.suppress(SchemaError):
                out.append(parse_line(line, RECORD_KINDS, str(self.path)))
        return out


def _safe(fn: Any, *args: Any) -> None:
    """Trackers never fail a cell."""
    try:
        fn(*args)
    except Exception as exc:
        print(f"warning: tracker {fn.__qualname__} failed: {exc}")
