"""Plan a matrix against the run store, then run each pending cell in isolation.

Every cell ends with exactly one ``summary.json`` (``harness/schema.py``): the cell writes it,
or, when the cell could not (a crash, a signal, a time limit, Ctrl-C), the runner writes it from
what the cell left behind (``metrics.jsonl``, the tail of ``cell.log``).
"""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from harness.executor import CellTask, Executor, ExitStatus
from harness.matrix import Cell, Matrix
from harness.progress import Progress, QuietProgress
from harness.provenance import collect_provenance
from harness.schema import (
    CELL_FILE,
    CONFIG_FILE,
    LOG_FILE,
    METRICS_FILE,
    SCHEMA_VERSION,
    SUMMARY_FILE,
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
LOG_TAIL_LINES = 40


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
        "started_at": _now(),
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


def finalize(
    cell: Cell,
    cell_dir: Path,
    info: dict[str, Any],
    status: ExitStatus,
    timed_out: bool,
    interrupted: bool,
    wall_s: float,
) -> dict[str, Any]:
    """The cell's final summary: the cell's own, or one the runner writes; saved atomically."""
    path = cell_dir / SUMMARY_FILE
    own = _read_json(path)
    summary = own or {
        "cell_id": cell.cell_id,
        "seed": cell.config["seed"],
        "metrics": {},
        "train": _train_from_metrics(cell_dir),
        "memory": {},
        "timings": {},
        "checkpoints": {},
        "oom": None,
        "error": None,
    }
    if timed_out:
        limit = cell.config["runtime"]["timeout_s"]
        summary["outcome"] = "timeout"
        summary["error"] = _error(
            cell_dir, "timeout", f"the cell ran past runtime.timeout_s={limit}s and was stopped"
        )
    elif own is None:
        summary.update(_outcome_without_summary(cell, cell_dir, status, interrupted))
    elif isinstance(own.get("error"), dict) and not own["error"].get("log_tail"):
        own["error"]["log_tail"] = log_tail(cell_dir / LOG_FILE)  # the cell's own failure
    summary.update(
        cell_id=cell.cell_id,
        matrix=info["matrix"],
        axes=cell.axes,
        repeat=cell.repeat,
        schema_version=summary.get("schema_version", SCHEMA_VERSION),
    )
    timings = summary.setdefault("timings", {})
    timings.setdefault("wall_s", round(wall_s, 3))
    timings["runner_wall_s"] = round(wall_s, 3)
    if not summary.get("provenance"):
        summary["provenance"] = {
            **collect_provenance(import_torch=False),
            "started_at": info["started_at"],
            "finished_at": _now(),
        }
    write_json(path, summary)
    return summary


def _outcome_without_summary(
    cell: Cell, cell_dir: Path, status: ExitStatus, interrupted: bool
) -> dict[str, Any]:
    budget_gb = cell.config["runtime"].get("memory_budget_gb")
    if interrupted:
        return {
            "outcome": "interrupted",
            "error": _error(cell_dir, "interrupted", "stopped by Ctrl-C before it finished"),
        }
    if status.signal == signal.SIGKILL and budget_gb:
        budget = int(budget_gb * 2**30)
        msg = (
            f"killed by SIGKILL with runtime.memory_budget_gb={budget_gb} set "
            "(taken as the kernel's out-of-memory killer)"
        )
        return {
            "outcome": "oom",
            "oom": {
                "phase": _phase(cell_dir),
                "in_use_bytes": None,
                "budget_bytes": budget,
                "message": msg,
            },
        }
    if status.signal is not None:
        return {
            "outcome": "failed",
            "error": _error(
                cell_dir, "signal", f"the cell process was killed by {status.signal_name}"
            ),
        }
    if status.returncode == 0:
        return {
            "outcome": "failed",
            "error": _error(
                cell_dir, "missing_summary", "the cell exited 0 without writing summary.json"
            ),
        }
    kind, message = _exception_from_log(cell_dir)
    message = message or f"the cell exited with code {status.returncode}"
    return {"outcome": "failed", "error": _error(cell_dir, kind, message)}


def _error(cell_dir: Path, kind: str, message: str) -> dict[str, Any]:
    return {
        "type": kind,
        "message": message,
        "phase": _phase(cell_dir),
        "log_tail": log_tail(cell_dir / LOG_FILE),
    }


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 16384) -> str:
    """The last lines of a log (decoded leniently)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - max_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


_EXC_LINE = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning))(?::\s*(.*))?$"
)


def _exception_from_log(cell_dir: Path) -> tuple[str, str]:
    """(exception type, message) from the last traceback line of cell.log, else ("exit", "")."""
    for line in reversed(log_tail(cell_dir / LOG_FILE).splitlines()):
        match = _EXC_LINE.match(line.strip())
        if match:
            return match.group(1).rsplit(".", 1)[-1], (match.group(2) or "").strip()
    lines = [ln for ln in log_tail(cell_dir / LOG_FILE).splitlines() if ln.strip()]
    return "exit", lines[-1].strip() if lines else ""


def _phase(cell_dir: Path) -> str:
    records = MetricsTail(cell_dir / METRICS_FILE).read_new()
    if not records:
        return "setup"
    return "eval" if records[-1].get("kind") == "eval" else "train"


def _train_from_metrics(cell_dir: Path) -> dict[str, Any]:
    train = [r for r in MetricsTail(cell_dir / METRICS_FILE).read_new() if r.get("kind") == "train"]
    if not train:
        return {}
    return {
        "steps": train[-1].get("step"),
        "first_loss": train[0].get("loss"),
        "last_loss": train[-1].get("loss"),
    }


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


def _read_json(path: Path) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("outcome") else None


def _safe(fn: Any, *args: Any) -> None:
    """Trackers never fail a cell."""
    try:
        fn(*args)
    except Exception as exc:
        print(f"warning: tracker {fn.__qualname__} failed: {exc}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
