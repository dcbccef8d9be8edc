"""One JSON-ready record per cell for the page: the results table's columns, what a row opens
(config, provenance, log tail), memory per phase and the loss / validation curves.

Every number is the one the markdown report shows (``reports.tables``, ``reports.fmt``,
``reports.stats``); this module only lays them out for the browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.contracts.schema import CONFIG_FILE, LOG_FILE, METRICS_FILE, SchemaError
from harness.contracts.store_files import read_metrics
from reports import fmt, tables
from reports.plots import samples_per_step
from reports.results import CellResult, Results
from reports.stats import wilson_interval

LOG_LINES = 40
"""Lines of a cell's log shown when its row is opened."""
MAX_TEXT = 20_000
"""Characters of a config or log kept per cell (the page stays small for 1,000 cells)."""
STATUSES = (
    "completed",
    "time cap",
    "short of budget",
    "OOM",
    "timeout",
    "diverged",
    "failed",
    "interrupted",
    "damaged",
    "not run",
)
"""Outcome classes the page colours and filters by, in display order."""


def status(cell: CellResult) -> str:
    """The class of a cell's outcome (one of STATUSES): damaged when a file did not validate,
    not run when it has no summary, time cap / short of budget for a completed cell that
    trained less than its budget."""
    if cell.problem:
        return "damaged"
    kind = cell.outcome
    if kind == "incomplete":
        return "not run"
    if kind == "oom":
        return "OOM"
    if kind == "completed" and cell.shortfall:
        return "time cap" if cell.shortfall.startswith("time cap") else "short of budget"
    return kind if kind in STATUSES else "failed"


def _tail(path: Path, lines: int = LOG_LINES) -> str:
    try:
        data = path.read_bytes()[-64 * 1024 :]
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])[-MAX_TEXT:]


def _config_text(cell_dir: Path) -> str:
    try:
        return cell_dir.joinpath(CONFIG_FILE).read_text(encoding="utf-8", errors="replace")[
            :MAX_TEXT
        ]
    except OSError:
        return ""


def _eval_curve(cell_dir: Path) -> dict[str, list]:
    """Validation exact match per step from the eval records of metrics.jsonl."""
    try:
        records = read_metrics(cell_dir / METRICS_FILE)
    except (OSError, SchemaError):
        return {"step": [], "exact_match": []}
    points = sorted(
        (int(r["step"]), float(r["exact_match"]))
        for r in records
        if r.get("kind") == "eval" and r.get("split", "val") == "val" and "step" in r
    )
    return {"step": [p[0] for p in points], "exact_match": [p[1] for p in points]}


def _curves(store: Results, cell: CellResult, cell_dir: Path) -> dict[str, Any]:
    per_step = samples_per_step(store, cell)
    return {
        "step": [p[0] for p in cell.curve],
        "loss": [p[1] for p in cell.curve],
        "samples_per_step": per_step,
        "val": _eval_curve(cell_dir),
    }


def _memory(cell: CellResult) -> dict[str, Any]:
    oom = cell.section("oom")
    memory = cell.section("memory")
    return {
        "train": tables.peak(cell, "train"),
        "eval": tables.peak(cell, "eval"),
        "budget": memory.get("budget_bytes") or oom.get("budget_bytes"),
        "oom_phase": oom.get("phase") if cell.outcome == "oom" else None,
        "oom_bytes": oom.get("in_use_bytes") if cell.outcome == "oom" else None,
        "kind": memory.get("kind"),
    }


def _score(cell: CellResult) -> dict[str, Any]:
    kn = cell.exact()
    exact, ci = tables.exact_text(cell)
    out: dict[str, Any] = {"k": None, "n": None, "rate": None, "lo": None, "hi": None}
    if kn:
        lo, hi = wilson_interval(*kn)
        out = {"k": kn[0], "n": kn[1], "rate": kn[0] / kn[1], "lo": lo, "hi": hi}
    return {**out, "text": exact, "ci_text": ci, "scored_on": fmt.scored_on(cell)}


def cell_record(store: Results, cell: CellResult, cell_dir: Path) -> dict[str, Any]:
    """Everything the page shows about one cell (JSON-ready, deterministic)."""
    m, t = cell.section("metrics"), cell.section("train")
    timings = cell.section("timings")
    log = _tail(cell_dir / LOG_FILE) or str(cell.section("error").get("log_tail") or "")
    return {
        "id": cell.cell_id,
        "axes": {k: fmt.value(cell.axes.get(k)) for k in store.axes},
        "repeat": cell.repeat,
        "status": status(cell),
        "outcome": f"damaged: {cell.problem}"
        if cell.problem
        else fmt.outcome(cell).replace("**", ""),
        "problem": cell.problem or "",
        "score": _score(cell),
        "token_accuracy": m.get("token_accuracy"),
        "cer": m.get("cer"),
        "steps": t.get("steps"),
        "steps_per_s": t.get("steps_per_s"),
        "wall_s": timings.get("wall_s"),
        "texts": {
            "token_accuracy": fmt.pct(m.get("token_accuracy")),
            "cer": fmt.num(m.get("cer"), 3),
            "peak_train": fmt.nbytes(tables.peak(cell, "train")),
            "peak_eval": fmt.nbytes(tables.peak(cell, "eval")),
            "steps_per_s": fmt.num(t.get("steps_per_s")),
            "wall": fmt.seconds(timings.get("wall_s")),
        },
        "memory": _memory(cell),
        "curve": _curves(store, cell, cell_dir),
        "config": _config_text(cell_dir),
        "provenance": yaml.safe_dump(cell.section("provenance"), sort_keys=True)
        if cell.section("provenance")
        else "",
        "log": log,
    }
