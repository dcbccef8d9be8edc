"""What a cell looks like in W&B: run name, history rows, summary, model-artifact metadata.

Pure functions from the run store's records (``harness/contracts/schema.py``) to W&B values, so that the
mapping is tested without W&B and documented in one place (README "Weights & Biases"):

- history: one row per metrics.jsonl record; ``step`` is the optimizer step (the x-axis), a
  train record's fields are ``train/<field>``, an eval record's ``<split>/<field>``;
- summary: summary.json flattened with ``/`` (``outcome``, ``metrics/exact_match``,
  ``oom/phase``, ``memory/train/peak_bytes``, ``timings/wall_s``, ...), plus
  ``metrics/exact_match_ci95_low|high`` (Wilson) with ``metrics/exact_match_ci95_covers``
  (``CI_COVERS``: the interval is about this one trained run's samples, as every W&B run is one
  run; seed variance and claims about a configuration are the report's, over matched seeds) and
  ``truncated`` (why a completed cell did not train its full budget) and ``backoff`` (what
  ``runtime.oom_backoff`` changed: ``micro_batch 4 -> 1 after OOM``);
- model artifact: the scored checkpoint under ``best_model/`` with ``MODEL_METADATA_KEYS``.
"""

from __future__ import annotations

from typing import Any

from harness.contracts.attempts import backoff_exhausted, substitution
from harness.contracts.checkpoint_meta import BASE_MODEL_KEY, CONFIG_HASH_KEY, VERSION_KEY
from harness.contracts.schema import budget_shortfall

CI_COVERS = "this run's held-out samples (one trained run; seed variance not included)"
"""What the summary's exact-match interval covers (``metrics/exact_match_ci95_covers``)."""
MODEL_DIR = "best_model"
"""Folder of the checkpoint inside a model artifact (``loaders`` looks there first)."""
NAME_MAX = 128
SKIPPED_SUMMARY_KEYS = ("error/log_tail", "provenance/packages")
"""Long texts that stay in summary.json only."""
MODEL_METADATA_KEYS: tuple[str, ...] = (
    "format",
    "base_model",
    "file",
    "weights",
    "method",
    "lora",
    "attention",
    "model",
    "config_hash",
    "cell_id",
    "matrix",
    "step",
    "metric",
    "exact_match",
    "exact_match_k",
    "n",
    "scored_split",
    "harness_version",
)
"""The metadata of a model artifact (meanings in the README; ``benchmark --wandb_artifact``
reads ``format`` and ``base_model``)."""


def run_name(axes: dict[str, Any], cell_id: str) -> str:
    """``mode=causal grad_accum=4``: the cell's varying axes, each by its last key part unless
    two axes share it; the cell id when nothing varies."""
    if not axes:
        return cell_id
    tails = [key.rsplit(".", 1)[-1] for key in axes]
    parts = []
    for (key, value), tail in zip(axes.items(), tails, strict=True):
        label = tail if tails.count(tail) == 1 else key
        parts.append(f"{label}={_short(value)}")
    name = " ".join(parts)
    return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1] + "~"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "+".join(str(v) for v in value)
    return str(value)


def history_row(record: dict[str, Any]) -> dict[str, Any] | None:
    """One metrics.jsonl record as a W&B history row, or None for an unknown kind."""
    kind = record.get("kind")
    if kind == "train":
        prefix = "train"
    elif kind == "eval":
        prefix = str(record.get("split") or "eval")
    else:
        return None
    row: dict[str, Any] = {"step": record.get("step")}
    for key, value in record.items():
        if key not in ("kind", "step", "split"):
            row[f"{prefix}/{key}"] = value
    return row


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> ``a/b/c`` keys; None values are left out."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "/"))
        elif value is not None:
            out[path] = value
    return out


def summary_fields(summary: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The W&B run summary of a finished cell (see the module docstring)."""
    from reports.stats import wilson_interval

    fields = {k: v for k, v in flatten(summary).items() if not k.startswith(SKIPPED_SUMMARY_KEYS)}
    metrics = summary.get("metrics") or {}
    k, n = metrics.get("exact_match_k"), metrics.get("n")
    if isinstance(k, int) and isinstance(n, int) and n > 0:
        low, high = wilson_interval(k, n)
        fields["metrics/exact_match_ci95_low"] = low
        fields["metrics/exact_match_ci95_high"] = high
        fields["metrics/exact_match_ci95_covers"] = CI_COVERS
    if summary.get("outcome") == "completed":
        planned = (config.get("train") or {}).get("max_steps")
        short = budget_shortfall(summary, planned if isinstance(planned, int) else None)
        if short:
            fields["truncated"] = short
    if backoff := substitution(summary) or backoff_exhausted(summary):
        fields["backoff"] = backoff  # e.g. "micro_batch 4 -> 1 after OOM"
    return fields


def scored_checkpoint(summary: dict[str, Any]) -> tuple[str, str] | None:
    """``(weights, path relative to the cell dir)`` of the checkpoint the cell's score is for:
    the ``scored_weights`` one, else ``best``; None when the cell has no score or no such file."""
    metrics = summary.get("metrics")
    if not metrics:
        return None
    checkpoints = summary.get("checkpoints") or {}
    for weights in (metrics.get("scored_weights"), "best", "final"):
        path = checkpoints.get(weights) if weights else None
        if path and str(path).endswith(".safetensors"):
            return str(weights), str(path)
    return None


def model_metadata(
    described: dict[str, Any],
    file_name: str,
    weights: str,
    summary: dict[str, Any],
    config: dict[str, Any],
    info: dict[str, Any],
) -> dict[str, Any]:
    """Metadata of a model artifact. ``described`` is ``loaders.inspect_checkpoint`` of the file
    (the format the loader will detect and the file's own header)."""
    details = described.get("details") or {}
    train = config.get("train") or {}
    metrics = summary.get("metrics") or {}
    lora = train.get("lora") or {}
    best_metric = (config.get("eval") or {}).get("best_metric")
    return {
        "format": described.get("format"),
        "base_model": details.get(BASE_MODEL_KEY),
        "file": f"{MODEL_DIR}/{file_name}",
        "weights": weights,
        "method": train.get("method"),
        "lora": dict(lora) if train.get("method") == "lora" else None,
        "attention": config.get("attention"),
        "model": config.get("model"),
        "config_hash": details.get(CONFIG_HASH_KEY) or summary.get("cell_id"),
        "cell_id": summary.get("cell_id"),
        "matrix": info.get("matrix"),
        "step": metrics.get("best_step"),
        "metric": {"name": best_metric, "split": "val", "value": metrics.get("best_val")},
        "exact_match": metrics.get("exact_match"),
        "exact_match_k": metrics.get("exact_match_k"),
        "n": metrics.get("n"),
        "scored_split": "val" if metrics.get("test_is_val") else "test",
        "harness_version": details.get(VERSION_KEY),
    }
