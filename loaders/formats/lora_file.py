"""``lora-file`` (seed 000): one file of ``<module>.lora_A`` / ``.lora_B`` pairs plus extra-head tensors.

Both layouts are accepted (seed 000: ``A [in, r]``, ``B [r, out]``; PEFT: ``A [r, in]``,
``B [out, r]``; the official moondream ``.pt`` variant's bare ``.A [r, in]`` / ``.B [out, r]``
leaves under the old ``text_model.transformer.h.*.mixer.Wqkv`` names, applied unscaled as the
original ``linear(linear(x, A), B)`` unless ``lora_alpha`` is given); the rank is read off the shapes; alpha comes from the file's metadata (the
harness writes it) or ``lora_alpha=``. Pairs are merged into the base weights
(``W += alpha / r * B @ A``). Non-LoRA tensors (seed 000's ``region.*`` head) are loaded into
the model where it has modules of those names, otherwise kept in ``loaded.extra_tensors``.
The merge itself is ``loaders.lora_apply.apply_lora`` (shared with the ``harness`` format).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from loaders import lora
from loaders.base import load_base
from loaders.context import LoadContext
from loaders.io import (
    SAFETENSORS_SUFFIXES,
    TENSOR_SUFFIXES,
    load_tensors,
    read_header,
    tensor_shapes,
)
from loaders.lora_apply import apply_lora

NAME = "lora-file"


def _meta(path: Path) -> dict[str, str]:
    return read_header(path)[1] if path.suffix in SAFETENSORS_SUFFIXES else {}


def detect(path: Path) -> str | None:
    """A single tensor file whose keys include LoRA ``lora_A``/``lora_B`` pairs."""
    if not (path.is_file() and path.suffix in TENSOR_SUFFIXES):
        return None
    pairs, extra = lora.group_pairs(list(tensor_shapes(path)))
    if pairs:
        return f"{len(pairs)} LoRA pairs and {len(extra)} other tensors in one file"
    return None


def describe(path: Path) -> dict[str, Any]:
    """Pairs, inferred ranks, recorded alpha and extra tensors, from the header only."""
    shapes = tensor_shapes(path)
    pairs, extra = lora.group_pairs(list(shapes))
    ranks = sorted({min(shapes[p["A"]]) for p in pairs.values() if "A" in p})
    meta = _meta(path)
    return {
        "format": NAME,
        "lora_pairs": len(pairs),
        "ranks_from_shapes": ranks,
        "lora_alpha": meta.get("lora_alpha", "not recorded: pass lora_alpha="),
        "extra_tensors": len(extra),
        "extra_prefixes": sorted({k.split(".")[0] for k in extra}),
    }


def load(path: Path, ctx: LoadContext) -> nn.Module:
    """Base model, probe, merge the pairs, place the head."""
    ctx.report.files = [path.name]
    meta = _meta(path)
    tensors = load_tensors(path)
    model = load_base(None, ctx, path, recorded=meta.get("base_model"))
    ctx.probe_before(model)
    return apply_lora(model, tensors, meta, ctx, path)
