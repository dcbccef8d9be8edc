"""Merging a file's LoRA pairs into a base model and placing its extra (non-LoRA) tensors.

Shared by the ``lora-file`` and ``harness`` formats (a ``harness-lora`` file is the seed-000
layout with alpha, rank and targets recorded). Pairs are oriented and merged with the helpers in
``loaders.lora`` (``W += alpha / r * B @ A``); alpha comes from ``lora_alpha=``, the file's
metadata, or (official moondream bare ``.A``/``.B`` leaves) the rank, i.e. unscaled.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from harness.contracts import checkpoint_meta as cm
from loaders import lora
from loaders.apply import apply_state_dict
from loaders.context import LoadContext
from loaders.errors import (
    CorruptCheckpointError,
    MissingAlphaError,
    MissingKeysError,
    RankMismatchError,
    UnmatchedKeysError,
)

SEED000_DEFAULTS = "seed 000's trainer used rank 32, alpha 64 (alpha = 2 x rank)"


def _alpha(
    ctx: LoadContext, meta: dict[str, str], path: Path, ranks: set[int], bare: bool = False
) -> float:
    recorded = meta.get(cm.LORA_ALPHA_KEY)
    if ctx.lora_alpha is not None:
        if recorded is not None and float(recorded) != float(ctx.lora_alpha):
            ctx.warn(f"lora_alpha={ctx.lora_alpha} overrides the file's recorded alpha {recorded}")
        return float(ctx.lora_alpha)
    if recorded is not None:
        return float(recorded)
    if bare and len(ranks) == 1:
        # moondream's own `.A`/`.B` variant computes linear(linear(x, A), B): no alpha/r scale.
        ctx.note("bare A/B leaves (official moondream LoRA): applied unscaled (alpha = rank)")
        return float(next(iter(ranks)))
    raise MissingAlphaError(
        path,
        f"the file does not record LoRA alpha (rank {sorted(ranks)} read off the shapes)",
        f"pass lora_alpha=... (CLI: --lora-alpha); {SEED000_DEFAULTS}",
    )


def apply_lora(
    model: nn.Module,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, str],
    ctx: LoadContext,
    path: Path,
) -> nn.Module:
    """Merge the LoRA pairs into ``model`` and place the extra tensors; report everything."""
    pairs, extra = lora.group_pairs(list(tensors))
    modules = dict(model.named_modules())
    names = {
        n
        for n, m in modules.items()
        if getattr(m, "weight", None) is not None and m.weight.dim() == 2
    }
    kr = ctx.report.key_report("lora")
    resolved, ranks = [], set()
    for mod, ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"}:
            raise CorruptCheckpointError(
                path,
                f"LoRA pair '{mod}' lacks its {({'A', 'B'} - set(ab)).pop()} half",
                "re-export the checkpoint",
            )
        target = lora.map_name(mod, names)
        if target is None:
            kr.unexpected.extend(ab.values())
            continue
        in_f, out_f = lora.linear_dims(modules[target])
        pair = lora.orient(tensors[ab["A"]], tensors[ab["B"]], in_f, out_f, mod, path)
        resolved.append((target, pair, ab))
        ranks.add(pair.rank)
    if kr.unexpected:
        raise UnmatchedKeysError(
            path,
            f"{len(kr.unexpected) // 2} LoRA pairs match no module of the base model, e.g. '{kr.unexpected[0]}'",
            "pass the base model the adapter was trained on (base_model=...)",
        )
    expected_rank = ctx.lora_rank or (
        int(meta[cm.LORA_RANK_KEY]) if cm.LORA_RANK_KEY in meta else None
    )
    if expected_rank is not None and ranks - {expected_rank}:
        raise RankMismatchError(
            path,
            f"LoRA rank from the shapes is {sorted(ranks)} but {expected_rank} was expected",
            "pass the matching lora_rank= or the right checkpoint",
        )
    bare = all(k.rsplit(".", 1)[-1] in ("A", "B") for _, _, ab in resolved for k in ab.values())
    alpha = _alpha(ctx, meta, path, ranks, bare=bool(resolved) and bare)
    for target, pair, ab in resolved:
        lora.merge(modules[target], pair, alpha / pair.rank)
        kr.matched.extend(ab.values())
    _check_targets(meta, names, {t for t, _, _ in resolved}, kr, ctx, path)
    layouts = sorted({p.layout for _, p, _ in resolved})
    ctx.hp(
        lora_rank=sorted(ranks)[0] if len(ranks) == 1 else sorted(ranks),
        lora_alpha=alpha,
        lora_layout=layouts,
        lora_modules=len(resolved),
    )
    ctx.note(f"{len(resolved)} LoRA pairs merged into the base weights (scale alpha/r)")
    _place_extra(model, {k: tensors[k] for k in extra}, ctx, path)
    return model


def _check_targets(meta, names, done, kr, ctx: LoadContext, path: Path) -> None:
    """Modules the recorded ``lora_targets`` name but the file has no pair for are missing keys."""
    targets = json.loads(meta.get(cm.LORA_TARGETS_KEY, "[]"))
    if not targets:
        return
    # Suffixes (seed 000, tiny-vlm) or full module names (hf-vlm: the language model's only).
    named = [n for n in names if n.split(".")[-1] in targets or n in targets]
    missing = sorted(n for n in named if n not in done)
    kr.missing.extend(missing)
    if missing and ctx.strict:
        raise MissingKeysError(
            path,
            f"strict: no LoRA pair for {len(missing)} target modules, e.g. {missing[:3]}",
            "use the complete checkpoint",
        )
    if missing:
        ctx.warn(f"{len(missing)} LoRA target modules have no pair in the file, e.g. {missing[:3]}")


def _place_extra(
    model: nn.Module, extra: dict[str, torch.Tensor], ctx: LoadContext, path: Path
) -> None:
    if not extra:
        msg = (
            "the file holds LoRA tensors only, no extra-head tensors (seed 000 files before the "
            "region fix): the head keeps its base weights"
        )
        if ctx.strict:
            raise MissingKeysError(path, f"strict: {msg}", "use a checkpoint saved with the head")
        ctx.warn(msg)
        return
    kr = apply_state_dict(model, extra, ctx, "extra", path, require_all=False)
    kept = {k: extra[k] for k in kr.unexpected}
    if kr.matched:
        ctx.note(f"{len(kr.matched)} extra-head tensors loaded into the model's own modules")
    if kept:
        ctx.extra_tensors.update(kept)
        ctx.report.extra_tensors = sorted(kept)
        prefixes = sorted({k.split(".")[0] for k in kept})
        ctx.note(
            f"{len(kept)} trained tensors under {prefixes} have no module in the base model: "
            "kept in loaded.extra_tensors (attach the head and pass base_model=<module>)"
        )
