"""A finished cell's record: the summary the cell wrote, or, when the cell could not write one
(a crash, a kill, a hang past its time limit), the one the runner writes in its place from what
the cell left behind: the exit status, ``metrics.jsonl`` and the tail of ``cell.log``.

Exactly one process writes a cell's ``summary.json`` per attempt: the runner never rewrites a
summary the cell wrote (``harness/contracts/schema.py``).
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

from harness.contracts.outcomes import now_iso, samples_planned, stop_reason
from harness.contracts.provenance import collect_provenance
from harness.contracts.schema import (
    LOG_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    ErrorInfo,
    SchemaError,
    Summary,
    Timings,
    TrainStats,
)
from harness.contracts.store_files import read_metrics, read_summary, to_json, write_json
from harness.runner.executor import ExitStatus
from harness.runner.matrix import Cell

LOG_TAIL_LINES = 40


def finalize(
    cell: Cell,
    cell_dir: Path,
    status: ExitStatus,
    timed_out: bool,
    interrupted: bool,
    wall_s: float,
    started_at: str,
) -> dict[str, Any]:
    """The cell's final summary: the one it wrote, else one the runner writes now (atomically)."""
    path = cell_dir / SUMMARY_FILE
    try:
        return read_summary(path)
    except SchemaError:
        pass  # missing, or torn by a kill: the cell could not write it
    summary = Summary(
        outcome="failed",
        cell_id=cell.cell_id,
        seed=cell.config["seed"],
        train=_train_from_metrics(cell_dir),
        timings=Timings(wall_s=round(wall_s, 3)),
        written_by="runner",
    )
    if timed_out:
        limit = cell.config["runtime"]["timeout_s"]
        summary.outcome = "timeout"
        message = f"the cell ran past runtime.timeout_s={limit}s and did not stop; it was killed"
        summary.error = _error(cell_dir, "timeout", message)
    else:
        _outcome_without_summary(summary, cell, cell_dir, status, interrupted)
    _budget(summary.train, cell.config["train"], summary.outcome)
    summary.provenance = {
        **collect_provenance(),
        "started_at": started_at,
        "finished_at": now_iso(),
    }
    write_json(path, summary)
    return to_json(summary)


def _outcome_without_summary(
    summary: Summary, cell: Cell, cell_dir: Path, status: ExitStatus, interrupted: bool
) -> None:
    """Fill in the outcome of a cell that ended without a summary, from how it ended."""
    budget_gb = cell.config["runtime"].get("memory_budget_gb")
    if interrupted:  # first: a queued (Ray) cell stopped by Ctrl-C is interrupted, not failed
        summary.outcome = "interrupted"
        summary.error = _error(cell_dir, "interrupted", "stopped by Ctrl-C before it finished")
    elif status.lost:  # its node died under it: not the cell's failure, it runs again
        summary.outcome = "interrupted"
        summary.error = _error(cell_dir, "node_lost", status.reason or "its node was lost")
    elif status.reason:  # the executor knows why: never started, its worker or server lost
        summary.error = _error(cell_dir, "executor", status.reason)
    elif status.signal is not None:
        # No evidence of an out-of-memory ending here (RLIMIT_DATA makes allocations fail, it
        # sends no signal): a SIGKILL is a `kill -9` or the kernel's OOM killer; say both.
        message = f"the cell process was killed by {status.signal_name}"
        if status.signal == signal.SIGKILL and budget_gb:
            message += (
                f" (runtime.memory_budget_gb={budget_gb} is set: the kernel's out-of-memory "
                "killer is a possible cause, as is a `kill -9` from outside)"
            )
        summary.error = _error(cell_dir, "signal", message)
    elif status.returncode == 0:
        message = "the cell exited 0 without writing summary.json"
        summary.error = _error(cell_dir, "missing_summary", message)
    else:
        kind, message = _exception_from_log(cell_dir)
        message = message or f"the cell exited with code {status.returncode}"
        summary.error = _error(cell_dir, kind, message)


def _budget(stats: TrainStats, train: dict[str, Any], outcome: str) -> None:
    """The planned budget, from the config, and why training stopped, from how the cell ended
    (a crash or an unknown signal is ``error``)."""
    stats.steps_planned = train["max_steps"]
    stats.samples_planned = samples_planned(
        train["max_steps"], train["micro_batch"], train["grad_accum"]
    )
    stats.stop_reason = stop_reason(outcome)


def _error(cell_dir: Path, kind: str, message: str) -> ErrorInfo:
    return ErrorInfo(kind, message, _phase(cell_dir), log_tail(cell_dir / LOG_FILE))


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


def _records(cell_dir: Path) -> list[dict[str, Any]]:
    """The cell's metrics records; none when the file is damaged (this path must never fail)."""
    try:
        return read_metrics(cell_dir / METRICS_FILE)
    except SchemaError:
        return []


def _phase(cell_dir: Path) -> str:
    records = _records(cell_dir)
    if not records:
        return "setup"
    return "eval" if records[-1].get("kind") == "eval" else "train"


def _train_from_metrics(cell_dir: Path) -> TrainStats:
    train = [r for r in _records(cell_dir) if r.get("kind") == "train"]
    if not train:
        return TrainStats()
    return TrainStats(
        steps=train[-1].get("step"),
        first_loss=train[0].get("loss"),
        last_loss=train[-1].get("loss"),
    )
