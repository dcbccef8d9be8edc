"""Applying a name -> tensor dict onto a model with full key accounting (never a silent partial load)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from loaders.context import LoadContext
from loaders.errors import MissingKeysError, ShapeMismatchError
from loaders.load_report import KeyReport
from loaders.lora import candidate_names


def _target(key: str, names: set[str]) -> str | None:
    for c in candidate_names(key):
        if c in names:
            return c
        if "model." + c in names:
            return "model." + c
    return None


def _untie(model: nn.Module, name: str, value: torch.Tensor, ctx: LoadContext) -> None:
    """Give ``name`` its own parameter (the checkpoint stores a different value for a tied weight)."""
    mod_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(mod_name)
    old = getattr(module, leaf)
    setattr(module, leaf, nn.Parameter(value.detach().clone().to(old.dtype), old.requires_grad))
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "tie_word_embeddings"):
        cfg.tie_word_embeddings = False
    ctx.note(f"'{name}' is tied in the base model but the checkpoint stores its own copy: untied")


def apply_state_dict(
    model: nn.Module,
    tensors: dict[str, torch.Tensor],
    ctx: LoadContext,
    group: str,
    path: Path,
    require_all: bool = True,
) -> KeyReport:
    """Load ``tensors`` into ``model`` (shape-checked), recording matched/missing/unexpected keys.

    Shape mismatches always raise; missing model keys raise under ``ctx.strict`` (or are reported
    as a warning) when ``require_all``; keys that fit nothing are reported as unexpected.
    """
    own = model.state_dict(keep_vars=True)
    names = set(own)
    kr = ctx.report.key_report(group)
    mapped: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        target = _target(key, names)
        if target is None:
            kr.unexpected.append(key)
        elif tuple(own[target].shape) != tuple(value.shape):
            kr.mismatched.append(
                f"{key}: file {list(value.shape)} vs model {list(own[target].shape)}"
            )
        else:
            mapped[target] = value
            kr.matched.append(key)
    if kr.mismatched:
        raise ShapeMismatchError(
            path,
            f"{len(kr.mismatched)} tensors do not fit the model, e.g. {kr.mismatched[0]}",
            "check that the base model (and its vocabulary size) is the one the checkpoint was trained on",
        )
    aliases: dict[int, list[str]] = {}
    for n, t in own.items():
        aliases.setdefault(id(t), []).append(n)
    for group_names in aliases.values():
        present = [n for n in group_names if n in mapped]
        if len(present) > 1 and not all(
            torch.equal(mapped[present[0]], mapped[n]) for n in present[1:]
        ):
            for n in present[1:]:
                _untie(model, n, mapped[n], ctx)
    missing = [
        n for n in own if n not in mapped and not any(a in mapped for a in aliases[id(own[n])])
    ]
    if require_all and missing:
        kr.missing.extend(missing)
        if ctx.strict:
            raise MissingKeysError(
                path,
                f"strict: {len(missing)} model keys are not in the checkpoint, e.g. {missing[:3]}",
                "pass strict=False to keep base values for them, or use the complete checkpoint",
            )
        ctx.warn(
            f"{len(missing)} model keys not in {path.name} keep their base values, e.g. {missing[:3]}"
        )
    model.load_state_dict(mapped, strict=False)
    return kr
