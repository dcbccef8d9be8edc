"""``load_checkpoint``: work out what a path holds, load it with the right format, prove it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from loaders.context import ROUTING_MODES, LoadContext
from loaders.errors import AmbiguousCheckpointError, InvalidOptionError, NothingLoadableError
from loaders.formats import FORMATS
from loaders.io import TENSOR_SUFFIXES
from loaders.load_report import LoadReport

WANDB_MODEL_DIR = "best_model"
MOE_FORMAT = "dylora-moe"
"""The one format with experts (``expert=``, ``routing=``, ``temperature=``)."""


@dataclass
class LoadedCheckpoint:
    """A loaded checkpoint: the ready model (eval mode), its format name and the full report."""

    model: nn.Module
    format: str
    report: LoadReport
    extra_tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    """Trained tensors with no module in the model (e.g. seed 000's region head on a plain LM)."""


def resolve_source(source: str | Path, report: LoadReport) -> Path:
    """The path to load: a W&B artifact directory's ``best_model/`` when present."""
    path = Path(source).expanduser()
    if not path.exists():
        raise NothingLoadableError(path, "does not exist", "check the path (a file or a directory)")
    if path.is_dir() and (path / WANDB_MODEL_DIR).is_dir():
        report.notes.append(f"W&B artifact layout: using {WANDB_MODEL_DIR}/")
        path = path / WANDB_MODEL_DIR
    return path


def detect(path: Path) -> tuple[ModuleType, str, Path]:
    """``(format module, reason, path)``: the first format in ``FORMATS`` that claims the path.

    A directory no format claims is searched for a single tensor file.
    """
    for fmt in FORMATS:
        reason = fmt.detect(path)
        if reason:
            return fmt, reason, path
    if path.is_dir():
        candidates = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix in TENSOR_SUFFIXES
        )
        if len(candidates) == 1:
            fmt, reason, _ = detect(candidates[0])
            return fmt, f"{reason} (only tensor file in the directory)", candidates[0]
        if candidates:
            raise AmbiguousCheckpointError(
                path,
                f"holds {len(candidates)} checkpoint files: {[p.name for p in candidates]}",
                "pass the file you want",
            )
        listing = sorted(p.name for p in path.iterdir())[:20]
        raise NothingLoadableError(
            path,
            f"nothing loadable here (found: {listing or 'an empty directory'})",
            "expected config.json + weights, adapter_config.json, trainable_rows.pt, or a tensor file",
        )
    raise NothingLoadableError(
        path,
        f"unrecognised file type '{path.suffix}'",
        f"expected one of {', '.join(TENSOR_SUFFIXES)} or a checkpoint directory",
    )


def load_checkpoint(
    source: str | Path,
    base_model: str | Path | nn.Module | None = None,
    *,
    lora_alpha: float | None = None,
    lora_rank: int | None = None,
    expert: int | None = None,
    routing: str = "top1",
    temperature: float = 2.0,
    merge: bool = False,
    strict: bool = False,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    allow_remote_code: bool = False,
    probe: bool = True,
) -> LoadedCheckpoint:
    """Detect the format of ``source``, load it onto ``base_model`` if it needs one, and report.

    Raises a ``loaders.CheckpointError`` subclass whose message names the file and the fix.
    """
    report = LoadReport(source=str(source))
    check_options(source, base_model, lora_alpha, lora_rank, expert, routing, temperature, device)
    path = resolve_source(source, report)
    fmt, reason, path = detect(path)
    report.path, report.format, report.reason = str(path), fmt.NAME, reason
    if expert is not None and fmt.NAME != MOE_FORMAT:
        raise InvalidOptionError(
            path,
            f"expert={expert} applies to {MOE_FORMAT} checkpoints; this is {fmt.NAME}",
            "leave expert unset",
        )
    ctx = LoadContext(
        source=path,
        report=report,
        base_model=base_model,
        lora_alpha=lora_alpha,
        lora_rank=lora_rank,
        expert=expert,
        routing=routing,
        temperature=temperature,
        merge=merge,
        strict=strict,
        device=device,
        dtype=dtype,
        allow_remote_code=allow_remote_code,
        run_probe=probe,
    )
    ctx.torch_dtype()  # an unknown dtype is refused before any model is built
    model = fmt.load(path, ctx)
    model.eval()
    ctx.place(model)  # device/dtype first: the probe checks the model as it is returned
    ctx.probe_after(model)
    if report.probe is not None and report.probe.changed is False:
        ctx.warn(
            "the checkpoint did not change the model's logits: the trained weights are not in use"
        )
    p = next(model.parameters(), None)
    report.dtype = str(p.dtype).removeprefix("torch.") if p is not None else None
    report.device = str(p.device) if p is not None else None
    return LoadedCheckpoint(
        model=model, format=report.format, report=report, extra_tensors=ctx.extra_tensors
    )


def check_options(
    source: str | Path,
    base_model: Any,
    lora_alpha: Any,
    lora_rank: Any,
    expert: Any,
    routing: Any,
    temperature: Any,
    device: Any,
) -> None:
    """Refuse invalid options with ``InvalidOptionError`` before anything is read or built."""
    problems = []
    if base_model is not None and not isinstance(base_model, str | Path | nn.Module):
        problems.append(f"base_model={base_model!r} (a local path, a hub id or an nn.Module)")
    if lora_alpha is not None and not _positive(lora_alpha, float):
        problems.append(f"lora_alpha={lora_alpha!r} (a finite number > 0)")
    if lora_rank is not None and not _positive(lora_rank, int):
        problems.append(f"lora_rank={lora_rank!r} (an integer > 0)")
    if expert is not None and not (_is_int(expert) and expert >= 0):
        problems.append(f"expert={expert!r} (an integer >= 0)")
    if routing not in ROUTING_MODES:
        problems.append(f"routing={routing!r} (one of {', '.join(ROUTING_MODES)})")
    if not _positive(temperature, float):
        problems.append(f"temperature={temperature!r} (a finite number > 0)")
    problems += _device_problems(device)
    if problems:
        raise InvalidOptionError(
            source, "invalid option " + "; ".join(problems), "pass the values in brackets"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(value: Any, kind: type) -> bool:
    if kind is int:
        return _is_int(value) and value > 0
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf


def _device_problems(device: Any) -> list[str]:
    if device is None:
        return []
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        return [f"device={device!r} (e.g. 'cpu' or 'cuda:0')"]
    if dev.type == "cuda" and not torch.cuda.is_available():
        return [f"device={device!r}: no CUDA device is available here (use 'cpu')"]
    return []


def inspect_checkpoint(source: str | Path) -> dict[str, Any]:
    """Detection and the format's header-level description, without building any model."""
    report = LoadReport(source=str(source))
    path = resolve_source(source, report)
    fmt, reason, path = detect(path)
    details = dict(fmt.describe(path))
    info: dict[str, Any] = {
        "source": str(source),
        "path": str(path),
        "format": details.pop("format", fmt.NAME),
        "reason": reason,
        "details": details,
    }
    info["notes"] = report.notes
    return info
