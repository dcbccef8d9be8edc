"""``runtime.skip_predicted_oom``: a cell that must run out of memory is recorded, not run.

A cell is predicted out of memory by a cell of the same store that already ran out of memory at
micro-batch 1 (its last attempt, or its config without back-off) when every memory-relevant
setting of the new cell is at least the finished one's: the same model, attention, method,
precision, data and device; a sequence no shorter (``model.image_tokens``, ``data.digits``); a
budget no larger; for an OOM in evaluation an eval batch no smaller. Never when back-off (or the
new cell's own config) could still help: gradient checkpointing the finished cell did not have,
or, for an OOM in evaluation, an eval batch above 1 to halve.

The runner then writes the cell's summary itself (``written_by: runner``): outcome ``skipped``,
shown as ``skipped (predicted OOM, see cell <id>)``; ``--rerun skipped`` runs it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.contracts.attempts import effective_settings
from harness.contracts.keys import get_dotted
from harness.contracts.outcomes import now_iso, samples_planned
from harness.contracts.schema import (
    CELL_FILE,
    CONFIG_FILE,
    SUMMARY_FILE,
    CellInfo,
    ErrorInfo,
    Summary,
    TrainStats,
)
from harness.contracts.store_files import atomic_write_text, to_json, write_json
from harness.runner.matrix import Cell
from harness.runner.plan import Plan
from harness.runner.store import Store

SAME_KEYS = (
    "model",
    "attention",
    "train.method",
    "train.lora",
    "train.precision",
    "train.legacy_unscaled_accum",
    "runtime.device",
    "data.kind",
    "data.train_path",
    "data.val_path",
    "data.test_path",
    "data.image_width",
    "data.image_height",
    "data.question",
    "data.prompt_format",
)
"""Settings that must be equal (``model`` compared without ``image_tokens``)."""
LONGER_KEYS = ("model.image_tokens", "data.digits")
"""Settings that make every sequence at least as long when at least as large."""


def predicted_by(cell: Cell, store: Store) -> str | None:
    """The id of a finished cell that predicts this one runs out of memory, or None."""
    if not get_dotted(cell.config, "runtime.skip_predicted_oom"):
        return None
    for cell_id, state in sorted(store.scan().items()):
        if state.outcome != "oom" or cell_id == cell.cell_id:
            continue
        summary = store.read_summary(cell_id)
        config = _config(store.cell_dir(cell_id))
        if summary and config and _predicts(summary, config, cell.config):
            return cell_id
    return None


def _config(cell_dir: Path) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load((cell_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _same(a: dict[str, Any], b: dict[str, Any], key: str) -> bool:
    va, vb = get_dotted(a, key), get_dotted(b, key)
    if key == "model" and isinstance(va, dict) and isinstance(vb, dict):
        va = {k: v for k, v in va.items() if k != "image_tokens"}
        vb = {k: v for k, v in vb.items() if k != "image_tokens"}
    return va == vb


def _predicts(summary: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``old`` (out of memory at micro-batch 1) predicts ``new`` runs out too."""
    attempts = summary.get("attempts") or []
    ran = attempts[-1].get("settings") if attempts else effective_settings(old)
    phase = (summary.get("oom") or {}).get("phase")
    if ran.get("train.micro_batch") != 1 or phase not in ("setup", "train", "eval"):
        return False
    if not all(_same(old, new, key) for key in SAME_KEYS):
        return False
    if any(_number(new, key) < _number(old, key) for key in LONGER_KEYS):
        return False
    budget_old, budget_new = _budget(old), _budget(new)
    if budget_new > budget_old:
        return False
    steps = get_dotted(new, "runtime.oom_backoff") or []
    could_checkpoint = get_dotted(new, "train.gradient_checkpointing") or (
        "gradient_checkpointing" in steps
    )
    if could_checkpoint and not ran.get("train.gradient_checkpointing"):
        return False  # checkpointing could still help
    if phase == "eval":
        eval_new = get_dotted(new, "eval.batch_size") or 0
        if eval_new < (ran.get("eval.batch_size") or 0) or ("eval_batch" in steps and eval_new > 1):
            return False
    return True


def _number(config: dict[str, Any], key: str) -> float:
    value = get_dotted(config, key)
    return value if isinstance(value, int | float) else 0


def _budget(config: dict[str, Any]) -> float:
    value = get_dotted(config, "runtime.memory_budget_gb")
    return float("inf") if value is None else float(value)


def record_skipped(cell: Cell, plan: Plan, predictor: str) -> dict[str, Any]:
    """Write the skipped cell's folder (config, cell.json, summary) and return its summary."""
    cell_dir = plan.store.prepare(cell.cell_id)
    atomic_write_text(cell_dir / CONFIG_FILE, yaml.safe_dump(cell.config, sort_keys=False))
    now = now_iso()
    info = CellInfo(
        cell_id=cell.cell_id,
        matrix=plan.matrix.name,
        source=plan.matrix.source,
        axes=cell.axes,
        repeat=cell.repeat,
        index=cell.index,
        started_at=now,
        finished_at=now,
        runner_wall_s=0.0,
    )
    write_json(cell_dir / CELL_FILE, info)
    train = cell.config["train"]
    planned = samples_planned(train["max_steps"], train["micro_batch"], train["grad_accum"])
    message = f"predicted OOM, see cell {predictor}"
    summary = Summary(
        outcome="skipped",
        cell_id=cell.cell_id,
        seed=cell.config["seed"],
        train=TrainStats(steps_planned=train["max_steps"], samples_planned=planned),
        error=ErrorInfo("predicted_oom", message, "setup"),
        written_by="runner",
    )
    write_json(cell_dir / SUMMARY_FILE, summary)
    return to_json(summary)
