"""The JSON results of one ``benchmark`` run: its schema (one dataclass) and the proof of change.

Written beside the markdown report (``report.md`` -> ``report.json``) by ``cli.write_outputs``;
the report is a pure function of this record (``report.render``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.benchmark.sides import SideResult
from harness.contracts.store_files import atomic_write_text
from loaders.load_report import LoadReport
from loaders.probe import CHANGE_ATOL

SCHEMA = "benchmark/1"


@dataclass
class BenchmarkResults:
    """Everything one run found, JSON-ready."""

    command: list[str]
    """The argv the run was started with."""
    task: str
    task_reason: str
    """Why this task: ``--task``, or what the data looked like."""
    data: dict[str, Any]
    """``path``, ``selection`` (how the samples were chosen, in words), ``n_available``, ``n``."""
    generation: dict[str, Any]
    """``GenerationSettings.to_dict()`` (empty for perplexity, which generates nothing)."""
    trained: dict[str, Any]
    """``source``, ``origin`` (local path / W&B artifact, downloaded or local copy),
    ``reference``, artifact ``metadata``, local paths ``tried``, ``tokenizer``."""
    base: dict[str, Any]
    """``spec``, ``origin`` (--base_model / checkpoint / artifact metadata), ``evaluated``."""
    loader: dict[str, Any]
    """``LoadReport.to_dict()``: detected format and why, keys, probe, warnings."""
    proof: dict[str, Any]
    """Did the checkpoint change the model? See ``proof``."""
    metrics: dict[str, Any]
    """``{"base": {...} | None, "trained": {...}}``: the task's metrics per model."""
    comparison: dict[str, Any] | None
    """``compare.compare_sides`` (None without a base)."""
    samples: list[dict[str, Any]]
    """One row per sample: ``id``, ``base`` and ``trained`` per-sample records."""
    device: str
    dtype: str | None
    options: dict[str, Any]
    timings: dict[str, float]
    """Seconds: ``fetch_s``, ``load_s`` (= ``load_base_s`` + ``load_trained_s``; the loader's
    own 4-token probe is inside ``load_trained_s``), ``probe_s`` (the data probe: one forward pass
    per model), ``evaluation_s`` (both models, probe excluded), ``report_s``, ``total_s``."""
    provenance: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    exit_status: int = 0
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def unchanged(self) -> bool:
        """The trained model's logits equal the base's (the seed-002 failure)."""
        return self.proof.get("unchanged") is True


def _data_probe(base: SideResult, trained: SideResult, sample_id: str) -> dict[str, Any]:
    a, b = base.first_logits, trained.first_logits
    if a is None or b is None:
        return {"available": False}
    v = min(a.shape[-1], b.shape[-1])
    diff = float((a[..., :v] - b[..., :v]).abs().max())
    return {
        "available": True,
        "sample": sample_id,
        "max_abs_diff": diff,
        "changed": diff > CHANGE_ATOL,
    }


def proof(
    report: LoadReport,
    base: SideResult | None,
    trained: SideResult,
    task: str,
    samples: list[Any],
) -> dict[str, Any]:
    """The logit-change proof: the loader's before/after probe (format-aware: it feeds new vocab
    rows and image prefixes), plus the data probe (last-position logits of the first evaluation
    sample's prompt, base vs trained). ``unchanged`` is True when the loader's probe found no
    change, or, where the loader had nothing to compare, when the data probe found none."""
    p = report.probe
    loader = (
        {
            "available": p.before_available,
            "changed": p.changed,
            "max_abs_diff": p.max_abs_diff,
            "note": p.note,
        }
        if p is not None
        else {"available": False, "changed": None, "max_abs_diff": None, "note": "no probe ran"}
    )
    first = getattr(samples[0], "id", None) or getattr(samples[0], "task_id", "")
    data = _data_probe(base, trained, str(first)) if base is not None else {"available": False}
    if loader["available"]:
        unchanged = loader["changed"] is False
    elif data["available"]:
        unchanged = not data["changed"]
    else:
        unchanged = None
    return {"loader_probe": loader, "data_probe": data, "unchanged": unchanged, "atol": CHANGE_ATOL}


def _clean(value: Any) -> Any:
    """Non-finite floats become None (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, results: BenchmarkResults) -> None:
    """The results file (atomic; sorted keys, so the same results give the same bytes)."""
    text = json.dumps(_clean(results.to_dict()), indent=2, sort_keys=True, default=str)
    atomic_write_text(path, text + "\n")
