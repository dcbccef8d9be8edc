"""Formatting of numbers, values and outcomes for markdown (fixed precision: same input, same text)."""

from __future__ import annotations

import math
from typing import Any

from harness.contracts.attempts import backoff_exhausted, substitution
from harness.contracts.schema import resumed_text
from reports.results import CellResult

DASH = "—"
MAX_MESSAGE = 90


def num(value: Any, digits: int = 2) -> str:
    """A number with fixed decimals, or a dash when missing / not finite."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return DASH
    return f"{value:.{digits}f}"


def pct(value: Any, digits: int = 1) -> str:
    """A proportion in [0, 1] as a percentage."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return DASH
    return f"{100 * value:.{digits}f}%"


def pts(value: float) -> str:
    """A difference of proportions in percentage points, signed."""
    return f"{100 * value:+.1f} pts"


def pts_interval(lo: float, hi: float) -> str:
    """An interval of differences in percentage points."""
    return f"[{100 * lo:+.1f}, {100 * hi:+.1f}] pts"


def nbytes(value: Any) -> str:
    """Bytes in binary units (MiB below 1 GiB)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return DASH
    if value >= 2**30:
        return f"{value / 2**30:.2f} GiB"
    return f"{value / 2**20:.0f} MiB"


def seconds(value: Any) -> str:
    """A duration: seconds below two minutes, else minutes (or hours)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return DASH
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def pvalue(p: float) -> str:
    """p-value text."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def value(v: Any) -> str:
    """A config value as written in YAML."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    return str(v)


def cell_text(text: Any, limit: int = MAX_MESSAGE) -> str:
    """One line, safe inside a markdown table cell, at most ``limit`` characters."""
    line = " ".join(str(text).split())
    if len(line) > limit:
        line = line[: limit - 3] + "..."
    return line.replace("|", "\\|")


def first_line(text: Any) -> str:
    """The first non-empty line of a message."""
    for line in str(text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def assignment(pairs: dict[str, Any] | tuple[tuple[str, Any], ...]) -> str:
    """``key=value, key=value`` (or `all cells` when empty)."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    text = ", ".join(f"{k}={value(v)}" for k, v in items)
    return text or "all cells"


def _limit(cell: CellResult) -> str:
    runtime = (cell.config or {}).get("runtime") or {}
    train = (cell.config or {}).get("train") or {}
    if isinstance(runtime, dict) and runtime.get("timeout_s"):
        return f"limit {seconds(runtime['timeout_s'])}"
    if isinstance(train, dict) and train.get("max_seconds"):
        return f"train.max_seconds {seconds(train['max_seconds'])}"
    return ""


def outcome(cell: CellResult) -> str:
    """Outcome with the reason: OOM phase and memory, error first line, timeout limit, and
    for a completed cell that trained less than its budget, how much (``budget_shortfall``);
    ``resumed at step 400/700`` after it where the cell continued from a resume point."""
    text = _outcome(cell)
    resumed = resumed_text(cell.summary or {})
    return f"{text}; {resumed}" if resumed else text


def _outcome(cell: CellResult) -> str:
    kind = cell.outcome
    if kind == "completed":
        short, backoff = cell.shortfall, substitution(cell.summary or {})
        if short is None:
            return f"completed ({backoff})" if backoff else "completed"
        short += "" if short.startswith("time cap") else " of budget"
        return f"**completed, {short}**" + (f" ({backoff})" if backoff else "")
    if kind == "incomplete":
        return "not run / incomplete" + (f" ({cell_text(cell.problem)})" if cell.problem else "")
    if kind == "skipped":
        return f"skipped ({cell_text(cell.section('error').get('message') or 'not run', 70)})"
    if kind == "oom":
        oom = cell.section("oom")
        parts = [str(oom.get("phase") or "?")]
        used, budget = oom.get("in_use_bytes"), oom.get("budget_bytes")
        budget = budget or cell.section("memory").get("budget_bytes")
        memory = [
            f"{nbytes(used)} in use" if used else "",
            f"budget {nbytes(budget)}" if budget else "",
        ]
        if any(memory):
            parts.append(" / ".join(m for m in memory if m))
        parts.append(backoff_exhausted(cell.summary or {}) or "")
        return f"**OOM** ({', '.join(p for p in parts if p)})"
    error = cell.section("error")
    detail = first_line(error.get("message"))
    if error.get("type") and error.get("type") not in ("timeout", "signal"):
        detail = f"{error['type']}: {detail}" if detail else str(error["type"])
    if error.get("phase"):
        detail = f"{error['phase']}: {detail}" if detail else str(error["phase"])
    if kind == "timeout":
        limit = _limit(cell)
        detail = "; ".join(x for x in (limit, detail) if x)
    return f"**{kind}**" + (f" ({cell_text(detail, 70)})" if detail else "")


def scored_on(cell: CellResult) -> str:
    """Which split and weights produced a cell's score, when not the held-out test split with
    the best validation step's weights ("" then, or when the store does not record it)."""
    m = cell.section("metrics")
    parts = []
    if m.get("test_is_val") is True:
        chose = m.get("scored_weights") != "final"
        parts.append("validation split that chose the step" if chose else "validation split")
    if m.get("scored_weights") == "final":
        parts.append("final weights")
    return ", ".join(parts)
