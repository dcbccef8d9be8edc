"""Hand-written LoRA tensors: key parsing, layout/rank inference, name mapping and merging."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from loaders.errors import RankMismatchError, ShapeMismatchError

# Leaves of a LoRA pair: seed 000 (`.lora_A`, no `.weight`), PEFT (`.lora_A.weight`,
# `.lora_A.<adapter>.weight`).
_LEAVES = ("lora_A", "lora_B")
# Prefixes that wrap a model's own module names (PEFT, DDP, torch.compile; `decoder.`: an hf-vlm
# cell's checkpoint, whose PrefixLM holds the transformers VLM as `decoder`).
STRIP_PREFIXES = ("foundation_model.", "base_model.model.", "module.", "_orig_mod.", "decoder.")
# The official moondream repo renamed its modules; map old names onto new ones.
MOONDREAM_RENAMES = (
    ("text_model.transformer.h", "text.blocks"),
    (".mixer", ".attn"),
    (".Wqkv", ".qkv"),
    (".out_proj", ".proj"),
)


# The official moondream repo's own LoRA `.pt` variants: bare `A` [r, in] / `B` [out, r] leaves.
_BARE_LEAVES = ("A", "B")


def split_lora_key(key: str) -> tuple[str, str] | None:
    """``(module path, 'A'|'B')`` for a LoRA tensor key, else None.

    Bare ``<module>.A`` / ``<module>.B`` leaves (moondream's own variant) count only when both
    halves are present; ``group_pairs`` checks that.
    """
    parts = key.split(".")
    if len(parts) > 1 and parts[-1] in _BARE_LEAVES:
        return ".".join(parts[:-1]), parts[-1]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in _LEAVES:
            tail = parts[i + 1 :]
            if tail in ([], ["weight"]) or (len(tail) == 2 and tail[1] == "weight"):
                return ".".join(parts[:i]), parts[i][-1]
            return None
    return None


def group_pairs(keys: list[str]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """LoRA pairs ``module -> {'A': key, 'B': key}`` and the remaining (extra) keys."""
    pairs: dict[str, dict[str, str]] = {}
    extra = []
    for k in keys:
        parsed = split_lora_key(k)
        if parsed is None:
            extra.append(k)
        else:
            pairs.setdefault(parsed[0], {})[parsed[1]] = k
    for mod, ab in list(pairs.items()):  # a lone bare `.A`/`.B` is an ordinary tensor
        if set(ab) != {"A", "B"} and all(k.rsplit(".", 1)[-1] in _BARE_LEAVES for k in ab.values()):
            extra.extend(ab.values())
            del pairs[mod]
    return pairs, extra


def candidate_names(name: str) -> list[str]:
    """Spellings of a module path to try against the model's own names, most literal first."""
    out = [name]
    for p in STRIP_PREFIXES:
        for n in list(out):
            if n.startswith(p):
                out.append(n[len(p) :])
    renamed = name
    for old, new in MOONDREAM_RENAMES:
        renamed = renamed.replace(old, new)
    out.append(renamed)
    return list(dict.fromkeys(out))


def map_name(name: str, model_names: set[str]) -> str | None:
    """The model's own name for ``name``: exact after prefix stripping, else a unique suffix match."""
    cands = candidate_names(name)
    for c in cands:
        if c in model_names:
            return c
    for c in cands:
        hits = [m for m in model_names if m.endswith("." + c) or c.endswith("." + m)]
        if len(hits) == 1:
            return hits[0]
    return None


def linear_dims(module: nn.Module) -> tuple[int, int]:
    """``(in, out)`` of a Linear-like module (nn.Linear, or transformers' Conv1D)."""
    w = module.weight
    if hasattr(module, "nf"):  # transformers Conv1D stores [in, out]
        return int(w.shape[0]), int(w.shape[1])
    return int(w.shape[1]), int(w.shape[0])


@dataclass
class Pair:
    """One LoRA pair in PEFT orientation: ``A [r, in]``, ``B [out, r]``."""

    A: torch.Tensor
    B: torch.Tensor
    layout: str  # "seed000 (A [in,r], B [r,out])" or "peft (A [r,in], B [out,r])"

    @property
    def rank(self) -> int:
        return int(self.A.shape[0])


def orient(a: torch.Tensor, b: torch.Tensor, in_f: int, out_f: int, key: str, path: Path) -> Pair:
    """Work out which layout a pair is in from the module's dims; refuse shapes that fit neither."""
    if a.dim() == 2 and b.dim() == 2:
        if a.shape[1] == in_f and b.shape[0] == out_f and a.shape[0] == b.shape[1]:
            return Pair(a, b, "peft (A [r,in], B [out,r])")
        if a.shape[0] == in_f and b.shape[1] == out_f and a.shape[1] == b.shape[0]:
            return Pair(a.t(), b.t(), "seed000 (A [in,r], B [r,out])")
    if (
        a.dim() == 2
        and b.dim() == 2
        and {in_f, out_f} & set(a.shape)
        and {in_f, out_f} & set(b.shape)
    ):
        raise RankMismatchError(
            path,
            f"LoRA pair '{key}' has inconsistent ranks: A {list(a.shape)}, B {list(b.shape)} "
            f"for a module of in={in_f}, out={out_f}",
            "the A and B tensors come from different runs; re-export the checkpoint",
        )
    raise ShapeMismatchError(
        path,
        f"LoRA pair '{key}' (A {list(a.shape)}, B {list(b.shape)}) does not fit the module "
        f"(in={in_f}, out={out_f}); valid: A [in,r]+B [r,out] or A [r,in]+B [out,r]",
        "check that the base model is the one the adapter was trained on",
    )


@torch.no_grad()
def merge(module: nn.Module, pair: Pair, scale: float) -> None:
    """``W += scale * B @ A`` in float32, written back in the weight's dtype."""
    w = module.weight
    delta = (pair.B.float() @ pair.A.float()) * scale
    if hasattr(module, "nf"):
        delta = delta.t()
    w.copy_((w.float() + delta.to(w.device)).to(w.dtype))
