"""Checkpoints this harness writes (harness/cell/checkpoints.py): safetensors with ``format`` metadata.

The names and header keys are ``harness/contracts/checkpoint_meta.py``'s, shared with the writer.
``harness-full`` is a full state dict (reported as ``state-dict``); ``harness-lora`` is the seed-000
layout with alpha, rank and targets recorded (reported as ``lora-file``). ``base_model`` is a hub
id / path, or ``harness:tiny-vlm``, rebuilt from the ``model_config`` metadata with the torch
seed recorded in ``base_init_seed`` (the tiny-vlm is random-init: a harness-lora file only holds
the deltas, so its base must be rebuilt bit-identically; the global RNG state is restored after).

Not recorded in the file, so not restored: the attention mode the cell trained with
(``attention.mode``); the model comes back with PrefixLM's default (causal, sdpa). Call
``loaded.model.set_attention(mode, impl)`` for a ``prefix_bidirectional`` cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from harness.contracts import checkpoint_meta as cm
from loaders.apply import apply_state_dict
from loaders.base import load_base
from loaders.context import LoadContext
from loaders.embedded import build_embedded
from loaders.io import load_tensors, read_header
from loaders.lora_apply import apply_lora

NAME = "harness"
"""The module's own name; a file is reported as the format its kind maps to in ``KINDS``."""
KINDS = {cm.FORMAT_FULL: "state-dict", cm.FORMAT_LORA: "lora-file"}
"""Reported format per kind: the ``NAME`` of the format the file's tensors are (``state_dict``,
``lora_file``; spelled here because a format module never imports a sibling)."""


def detect(path: Path) -> str | None:
    """A safetensors file whose metadata says ``format: harness-full|harness-lora``."""
    if not (path.is_file() and path.suffix == ".safetensors"):
        return None
    kind = read_header(path)[1].get(cm.FORMAT_KEY)
    return (
        f"safetensors metadata format={kind} (written by harness/cell/checkpoints.py)"
        if kind in KINDS
        else None
    )


def describe(path: Path) -> dict[str, Any]:
    """The format the file's kind is reported as, and its metadata (base model, hyperparameters)."""
    shapes, meta = read_header(path)
    kind = meta.get(cm.FORMAT_KEY)
    return {
        "format": KINDS.get(kind, NAME),
        "kind": kind,
        "base_model": meta.get(cm.BASE_MODEL_KEY),
        "tensors": len(shapes),
        **{k: meta[k] for k in cm.HP_KEYS if k in meta},
    }


def load(path: Path, ctx: LoadContext) -> nn.Module:
    """Rebuild the base, probe, then apply the full state dict or the LoRA pairs."""
    _, meta = read_header(path)
    kind = meta[cm.FORMAT_KEY]
    ctx.report.format = KINDS[kind]
    ctx.report.files = [path.name]
    ctx.hp(**{k: meta[k] for k in cm.HP_KEYS if k in meta})
    recorded = meta.get(cm.BASE_MODEL_KEY)
    spec = recorded if ctx.base_model is None else ctx.base_model
    if isinstance(spec, str) and spec.startswith(cm.EMBEDDED_PREFIX):
        # the harness's own model (recorded, or named again by the caller, as `benchmark
        # --no_compare` does): rebuilt from this file's config and init seed, its only source
        ctx.report.base_model = spec
        model = build_embedded(
            spec, meta.get(cm.MODEL_CONFIG_KEY), path, meta.get(cm.BASE_INIT_SEED_KEY)
        )
        if kind == cm.FORMAT_LORA and not meta.get(cm.BASE_INIT_SEED_KEY):
            ctx.warn(
                "harness-lora file without base_init_seed: the random-init tiny-vlm base cannot be "
                "rebuilt exactly, so the merged model is NOT the trained one (re-save the "
                "checkpoint with the current harness)"
            )
    else:
        model = load_base(None, ctx, path, recorded=recorded)
    ctx.probe_before(model)
    tensors = load_tensors(path)
    if kind == cm.FORMAT_FULL:
        apply_state_dict(model, tensors, ctx, "model", path)
        return model
    return apply_lora(model, tensors, meta, ctx, path)
