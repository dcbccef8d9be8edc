"""A finished cell's record: the summary the cell wrote, completed by the runner, or written by
the runner from what the cell left behind when it could not (a crash, a signal, a time limit,
Ctrl-C): the exit status, ``metrics.jsonl`` and the tail of ``cell.log``."""

from __future__ import annotations

import json
import re
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.executor import ExitStatus
from harness.matrix import Cell
from harness.provenance import collect_provenance
from harness.schema import (
    LOG_FILE,
    METRICS_FILE,
    SCHEMA_VERSION,
    SUMMARY_FILE,
    read_jsonl,
    write_json,
)

LOG_TAIL_LINES = 40


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
            "finished_at": now_iso(),
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


def _records(cell_dir: Path) -> list[dict[str, Any]]:
    """The cell's metrics records; none when the file is damaged (this path must never fail)."""
    try:
        return read_jsonl(cell_dir / METRICS_FILE)
    except (OSError, ValueError):
        return []


def _phase(cell_dir: Path) -> str:
    records = _records(cell_dir)
    if not records:
        return "setup"
    return "eval" if records[-1].get("kind") == "eval" else "train"


def _train_from_metrics(cell_dir: Path) -> dict[str, Any]:
    train = [r for r in _records(cell_dir) if r.get("kind") == "train"]
    if not train:
        return {}
    return {
        "steps": train[-1].get("step"),
        "first_loss": train[0].get("loss"),
        "last_loss": train[-1].get("loss"),
    }


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("outcome") else None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
