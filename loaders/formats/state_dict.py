"""``state-dict``: one file of tensors (.safetensors / .pt / .bin) applied onto a base model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from loaders.apply import apply_state_dict
from loaders.base import load_base
from loaders.context import LoadContext
from loaders.io import TENSOR_SUFFIXES, load_tensors, tensor_shapes

NAME = "state-dict"


def detect(path: Path) -> str | None:
    """Any single tensor file (checked last: more specific formats claim theirs first)."""
    if path.is_file() and path.suffix in TENSOR_SUFFIXES:
        return f"single tensor file ({path.suffix})"
    return None


def describe(path: Path) -> dict[str, Any]:
    """Tensor count (header only for safetensors)."""
    return {"format": NAME, "tensors": len(tensor_shapes(path))}


def load(path: Path, ctx: LoadContext) -> nn.Module:
    """Build the base model, record its probe logits, then load every tensor onto it."""
    ctx.report.files = [path.name]
    model = load_base(None, ctx, path)
    ctx.probe_before(model)
    apply_state_dict(model, load_tensors(path), ctx, "model", path)
    return model
