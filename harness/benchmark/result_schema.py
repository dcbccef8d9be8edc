"""The JSON results of one ``benchmark`` run: its schema (typed sections, one dataclass each),
its one writer and its one reader, and the proof of change.

Written beside the markdown report (``report.md`` -> ``report.json``) by ``cli.write_outputs``;
the report is a pure function of this record (``render.render``). ``read_results`` checks a file
against the schema as the run store's readers do (``harness.contracts.validate``): a wrong type or
a missing section is one line naming the file and the dotted key; unknown keys are allowed.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.sides import SideResult
from harness.contracts.store_files import atomic_write_text
from harness.contracts.validate import check_fields
from loaders.load_report import LoadReport
from loaders.probe import CHANGE_ATOL

SCHEMA = "benchmark/1"


class ResultsError(BenchmarkInputError):
    """A benchmark results file that is not what the schema says (names the file and key)."""


@dataclass
class DataSection:
    """What both models were scored on."""

    path: str
    """``--data`` as given, or the task's default data in words."""
    selection: str
    """How the samples were chosen, in words (``the first 2 of 6 samples (file order)``)."""
    n_available: int
    n: int
    max_samples: int | None
    sample_seed: int | None


@dataclass
class TrainedSection:
    """The trained model: where it came from and what was loaded."""

    source: str
    """The file or folder loaded (a W&B artifact's local copy)."""
    origin: str
    """``local path``, ``W&B artifact (downloaded)``, ``W&B artifact (local copy)``..."""
    reference: str | None
    """The resolved W&B reference (``entity/project/name:vN``), None for a local path."""
    metadata: dict[str, Any]
    """The artifact's metadata (``format``, ``base_model``...)."""
    tried: list[str]
    """Local copies looked for before a download."""
    loaded_path: str
    tokenizer: str
    """Where its tokenizer came from."""
    parameters: int


@dataclass
class BaseSection:
    """The base model the checkpoint was applied to (``spec`` None when none is known)."""

    spec: str | None
    origin: str
    """``--base_model``, ``recorded in the checkpoint``, ``W&B artifact metadata``, ``none known``."""
    notes: list[str]
    """Disagreements between the sources of the base."""
    evaluated: bool
    tokenizer: str | None
    reason_not_compared: str | None


@dataclass
class LoaderProbe:
    """The loader's own before/after probe (a fixed 4-token input)."""

    available: bool
    changed: bool | None
    max_abs_diff: float | None
    note: str


@dataclass
class Proof:
    """Did the checkpoint change the model? (``proof``)."""

    loader_probe: LoaderProbe
    data_probe: dict[str, Any]
    """``{"available": False}``, or ``available``, ``sample``, ``max_abs_diff``, ``changed``:
    last-position logits of the first sample's prompt, base vs trained."""
    unchanged: bool | None
    """True when the probes found no change; None when nothing could be compared."""
    atol: float


@dataclass
class Metrics:
    """The task's metrics per model (their keys are the task's: ``TaskSpec.metric_rows``)."""

    base: dict[str, Any] | None
    trained: dict[str, Any]


@dataclass
class SampleRow:
    """One sample: its id and each model's per-sample record."""

    id: str
    base: dict[str, Any] | None
    trained: dict[str, Any]


@dataclass
class Timings:
    """Seconds per phase. ``load_s`` = ``load_base_s`` + ``load_trained_s`` (the loader's own
    4-token probe is inside ``load_trained_s``); ``probe_s`` is the data probe (one forward pass
    per model); ``evaluation_s`` both models, probe excluded; ``report_s`` and ``total_s`` are
    completed by the writer."""

    fetch_s: float
    load_base_s: float
    load_trained_s: float
    load_s: float
    probe_s: float
    evaluation_s: float
    total_s: float
    report_s: float = 0.0


@dataclass
class BenchmarkResults:
    """Everything one run found; ``to_dict`` is the JSON record (same keys as its fields)."""

    command: list[str]
    """The argv the run was started with."""
    task: str
    task_reason: str
    """Why this task: ``--task``, or what the data looked like."""
    data: DataSection
    generation: dict[str, Any]
    """``GenerationSettings.to_dict()`` (empty for a task that generates nothing)."""
    trained: TrainedSection
    base: BaseSection
    loader: dict[str, Any]
    """``loaders.load_report.LoadReport.to_dict()`` (its schema is the loader's): detected
    format and why, keys, probe, warnings."""
    proof: Proof
    metrics: Metrics
    comparison: dict[str, Any] | None
    """``compare.compare_sides`` (None without a base)."""
    samples: list[SampleRow]
    device: str
    dtype: str | None
    options: dict[str, Any]
    """``allow_unchanged``, ``lora_alpha``, ``attention``, ``prompt_format`` (the cell's
    ``data.prompt_format``, applied to both sides; None without a cell config), and every task's
    recorded options (``TaskSpec.options``; None for another task's)."""
    timings: Timings
    provenance: dict[str, Any]
    """``harness.contracts.provenance.collect_provenance()`` and the torch build."""
    warnings: list[str] = field(default_factory=list)
    execution: dict[str, Any] = field(default_factory=dict)
    """How it ran: ``batch_size`` (N or ``auto``) and ``cache`` (the result cache's ``path``,
    None with ``--no_cache``, and per side the ``hits`` read and ``misses`` computed)."""
    exit_status: int = 0
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def unchanged(self) -> bool:
        """The trained model's logits equal the base's (the seed-002 failure)."""
        return self.proof.unchanged is True


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
) -> Proof:
    """The logit-change proof: the loader's before/after probe (format-aware: it feeds new vocab
    rows and image prefixes), plus the data probe (last-position logits of the first evaluation
    sample's prompt, base vs trained). ``unchanged`` is True when the loader's probe found no
    change, or, where the loader had nothing to compare, when the data probe found none."""
    p = report.probe
    loader = (
        LoaderProbe(p.before_available, p.changed, p.max_abs_diff, p.note)
        if p is not None
        else LoaderProbe(False, None, None, "no probe ran")
    )
    first = getattr(samples[0], "id", None) or getattr(samples[0], "task_id", "")
    data = _data_probe(base, trained, str(first)) if base is not None else {"available": False}
    if loader.available:
        unchanged = loader.changed is False
    elif data["available"]:
        unchanged = not data["changed"]
    else:
        unchanged = None
    return Proof(loader, data, unchanged, CHANGE_ATOL)


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


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated results of ``path`` (the mapping ``render`` takes), or ResultsError naming
    the file and the field."""
    where = str(path)
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{where}: unreadable benchmark results ({exc})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: not benchmark results: expected a JSON object")
    if data.get("schema") != SCHEMA:
        raise ResultsError(
            f"{where}: not benchmark results: `schema` is {data.get('schema')!r}, not {SCHEMA!r}"
        )
    problems = check_fields(BenchmarkResults, data)
    for name, section in _SECTIONS.items():  # sections are always whole: their keys required
        if isinstance(data.get(name), dict):
            problems += _missing(section, data[name], f"{name}.")
    for i, row in enumerate(data["samples"] if isinstance(data.get("samples"), list) else []):
        if not isinstance(row, dict):
            problems.append(f"`samples[{i}]` should be an object, got {type(row).__name__}")
            continue
        problems += check_fields(SampleRow, row, f"samples[{i}].")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ResultsError(f"{where}: not benchmark results: {problems[0]}{more}")
    return data


_SECTIONS = {
    "data": DataSection,
    "trained": TrainedSection,
    "base": BaseSection,
    "proof": Proof,
    "metrics": Metrics,
    "timings": Timings,
}
"""The typed sections of ``BenchmarkResults`` whose every key a reader may rely on."""


def _missing(section: type, value: dict[str, Any], prefix: str) -> list[str]:
    """The keys ``section`` requires that ``value`` lacks (its types are checked already)."""
    return [p for p in check_fields(section, value, prefix) if p.endswith(" is missing")]
