"""Attention modes for the decoder: causal, or prefix-bidirectional (BOS + image tokens both ways).

Two implementations of ``prefix_bidirectional``:

- ``sdpa`` (default): a 4D bool mask from transformers' own ``create_causal_mask(...,
  block_sequence_ids=prefix_ids)`` fed to SDPA, which keeps O(heads * S) per layer for backward.
- ``eager_dense``: the seed's approach, eager attention with an explicit dense additive
  ``[B, 1, S, S]`` float mask (0 = attend, dtype min = blocked). Its extra memory is the S x S
  softmax scores that eager attention keeps per layer for backward, not the mask itself.

Llama and Phi (transformers 5.23) use a 4D ``attention_mask`` as is, with or without a cache
(``masking_utils._preprocess_mask_arguments`` returns early on ``ndim == 4``). ``self_check``
catches masks that block nothing (the seed's 0/1 float mask, a bool mask under eager).
The memory cost of each mode is measured by ``python -m harness.tools.memory_probe``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers.masking_utils import create_causal_mask

ATTENTION_IMPLS: dict[tuple[str, str], str] = {
    ("causal", "sdpa"): "sdpa",
    ("causal", "eager_dense"): "eager",
    ("prefix_bidirectional", "sdpa"): "sdpa",
    ("prefix_bidirectional", "eager_dense"): "eager",
    ("causal", "flash_attention_2"): "flash_attention_2",
}
"""(mode, impl) -> the transformers ``attn_implementation`` to set on the decoder.
``flash_attention_2`` is causal only: transformers' ``flash_attention_mask`` keeps the padding
mask and drops every mask function (``block_sequence_ids`` included), so a prefix cell would
train causally; ``harness.contracts.config`` refuses that pair before a cell starts."""

CPU_IMPLS: list[tuple[str, str]] = [
    key for key, name in ATTENTION_IMPLS.items() if name != "flash_attention_2"
]
"""The (mode, impl) pairs that run on any machine (flash_attention_2 needs CUDA + flash-attn)."""


class MaskCheckError(RuntimeError):
    """The attention mask lets a position leak, or blocks one it should not."""


class AttentionUnavailable(RuntimeError):
    """The chosen attention implementation cannot run here (e.g. flash-attn not installed)."""


@dataclass
class CheckResult:
    """Outcome of a passing ``self_check``."""

    mode: str
    impl: str
    prefix_len: int
    seq_len: int
    probes: int
    """Number of (sample, perturbed position) pairs verified."""
    min_change: float
    """Smallest output change among outputs expected to move (well above ``atol`` if healthy)."""


def attn_implementation(mode: str, impl: str) -> str:
    """The transformers ``attn_implementation`` for ``(mode, impl)``; raises on unknown values."""
    if (mode, impl) not in ATTENTION_IMPLS:
        valid = ", ".join(f"{m}/{i}" for m, i in ATTENTION_IMPLS)
        raise ValueError(f"unknown attention mode/impl {mode!r}/{impl!r}; valid: {valid}")
    return ATTENTION_IMPLS[(mode, impl)]


def use_attention(model: torch.nn.Module, mode: str, impl: str) -> None:
    """``model.set_attn_implementation`` for ``(mode, impl)``, with one clear error when the
    implementation cannot run on this machine."""
    name = attn_implementation(mode, impl)
    try:
        model.set_attn_implementation(name)
    except ImportError as exc:
        raise AttentionUnavailable(
            f"attention.impl: {impl} cannot run here ({exc}); use attention.impl: sdpa, or "
            "install its package on a CUDA machine"
        ) from None


def prefix_ids_from_mask(attention_mask: torch.Tensor, prefix_len: int) -> torch.Tensor:
    """``[B, S]`` ids: 0 on each sample's first ``prefix_len`` real tokens, -1 elsewhere.

    Works for left and right padding: the prefix starts at each row's first real token.
    """
    real = attention_mask.bool()
    rank = real.long().cumsum(-1) - 1  # index among the real tokens of the row
    inside = real & (rank < prefix_len)
    return torch.where(inside, 0, -1).long()


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counting real tokens only (left padding keeps the first real token at 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def dense_additive_mask(
    attention_mask: torch.Tensor, prefix_ids: torch.Tensor, dtype: torch.dtype, q_len: int
) -> torch.Tensor:
    """Explicit ``[B, 1, q_len, kv_len]`` float mask: 0 = attend, ``finfo(dtype).min`` = blocked.

    Queries are the last ``q_len`` of the ``kv_len`` positions. A finite minimum (not -inf) keeps
    fully masked rows (pad queries) finite under eager softmax.
    """
    kv_len = attention_mask.shape[-1]
    if prefix_ids.shape[-1] < kv_len:  # decode steps: new tokens are text (-1)
        prefix_ids = torch.nn.functional.pad(
            prefix_ids, (0, kv_len - prefix_ids.shape[-1]), value=-1
        )
    device = attention_mask.device
    q_pos = torch.arange(kv_len - q_len, kv_len, device=device)
    k_pos = torch.arange(kv_len, device=device)
    causal = (k_pos[None, :] <= q_pos[:, None])[None]  # [1, q, kv]
    q_ids, k_ids = prefix_ids[:, kv_len - q_len :, None], prefix_ids[:, None, :]
    block = (q_ids == k_ids) & (q_ids >= 0)  # [B, q, kv]
    allowed = (causal | block) & attention_mask.bool()[:, None, :]
    zero = torch.zeros((), dtype=dtype, device=device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)[:, None]


def build_attention_mask(
    decoder: torch.nn.Module,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    prefix_ids: torch.Tensor | None,
    mode: str,
    impl: str,
    past_key_values: object | None = None,
) -> torch.Tensor:
    """The object to pass as ``attention_mask=`` to the HF decoder's forward.

    ``attention_mask`` is the 2D ``[B, past + S]`` padding mask (1 = real token); ``prefix_ids``
    is ``[B, past + S]`` (or shorter: right-padded with -1) with 0 on prefix positions and -1
    elsewhere. Causal mode, or ``prefix_ids=None``, returns the 2D mask unchanged (the model builds
    its own causal mask; also right for cached decode steps). Prefix mode returns a 4D bool mask
    (``sdpa``) or a dense additive float mask in ``inputs_embeds.dtype`` (``eager_dense``).
    """
    expected = attn_implementation(mode, impl)
    actual = decoder.config._attn_implementation
    if actual != expected:
        raise ValueError(
            f"attention {mode}/{impl} needs the decoder in {expected!r} attention, got {actual!r}; "
            f"call decoder.set_attn_implementation({expected!r}) first"
        )
    if mode == "causal" or prefix_ids is None:
        return attention_mask
    if impl == "sdpa":
        return create_causal_mask(
            config=decoder.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=past_key_values,
            block_sequence_ids=prefix_ids,
        )
    return dense_additive_mask(
        attention_mask, prefix_ids, inputs_embeds.dtype, inputs_embeds.shape[1]
    )


MaskFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _outputs(
    decoder: torch.nn.Module, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    out = decoder(inputs_embeds=embeds, attention_mask=mask, position_ids=positions)
    logits = getattr(out, "logits", None)
    return (logits if logits is not None else out.last_hidden_state).float()


def _expected_changed(
    mode: str, rel: int | None, prefix_len: int, start: int, end: int
) -> set[int]:
    """Absolute output positions that must move when relative position ``rel`` (None = pad) moves."""
    if rel is None:  # padding never influences real outputs
        return set()
    first = 0 if (mode == "prefix_bidirectional" and rel < prefix_len) else rel
    return set(range(start + first, end))


def _describe(rel: int | None, prefix_len: int, leaked: set[int], blocked: set[int]) -> str:
    kind = "a pad position" if rel is None else "prefix" if rel < prefix_len else "text"
    what = kind if rel is None else f"{kind} position {rel}"
    parts = []
    if leaked:
        parts.append(f"outputs {sorted(leaked)[:8]} saw it but must not (leak)")
    if blocked:
        parts.append(f"outputs {sorted(blocked)[:8]} did not see it but must (blocked)")
    return f"perturbing {what}: " + "; ".join(parts)


def _padded_batch(batch: int, seq_len: int, prefix_len: int) -> tuple[torch.Tensor, list[int]]:
    """2D mask with 1 + b pads on sample b, right-padded for even b and left-padded for odd b."""
    mask_2d, starts = torch.ones(batch, seq_len, dtype=torch.long), []
    for b in range(batch):
        pads = min(1 + b, seq_len - prefix_len - 2)
        if b % 2:
            mask_2d[b, :pads] = 0
        elif pads:
            mask_2d[b, seq_len - pads :] = 0
        starts.append(pads if b % 2 else 0)
    return mask_2d, starts


@torch.no_grad()
def self_check(
    decoder: torch.nn.Module,
    mode: str,
    impl: str,
    prefix_len: int,
    seq_len: int | None = None,
    hidden: int | None = None,
    batch: int = 2,
    atol: float = 1e-6,
    mask_fn: MaskFn | None = None,
) -> CheckResult:
    """Perturb single input positions and verify exactly which outputs change (eval mode).

    Random ``inputs_embeds``; sample b has 1 + b pads, right padding on even samples and left
    padding on odd ones (pad keys only matter to real queries under left padding). Expected:
    causal, perturbing p moves real outputs >= p; prefix, a prefix position moves every real
    output and a text position t moves outputs >= t (so text N never sees text N + 1); a pad
    position moves nothing real. Use an fp32 decoder: ``atol`` assumes it. ``mask_fn`` (embeds,
    mask_2d, prefix_ids) replaces the mask builder, e.g. to test a hand-made mask.
    Raises ``MaskCheckError`` naming the position that leaked or was blocked.
    """
    seq_len = seq_len or prefix_len + 3 + batch
    if prefix_len < 1 or seq_len < prefix_len + 3:
        raise ValueError(
            f"need prefix_len >= 1 and seq_len >= prefix_len + 3, got {prefix_len}, {seq_len}"
        )
    hidden = hidden or decoder.config.hidden_size
    param = next(decoder.parameters())
    mask_2d, starts = _padded_batch(batch, seq_len, prefix_len)
    mask_2d = mask_2d.to(param.device)
    ends = [s + int(n) for s, n in zip(starts, mask_2d.sum(-1).tolist(), strict=True)]
    prefix_ids = prefix_ids_from_mask(mask_2d, prefix_len)
    gen = torch.Generator().manual_seed(0)
    embeds = torch.randn(batch, seq_len, hidden, generator=gen).to(param.device, param.dtype)
    if mask_fn is None:
        mask = build_attention_mask(decoder, embeds, mask_2d, prefix_ids, mode, impl)
    else:
        mask = mask_fn(embeds, mask_2d, prefix_ids)
    positions = position_ids_from_mask(mask_2d)
    rows = torch.arange(batch, device=param.device)
    was_training = decoder.training
    decoder.eval()
    try:
        base = _outputs(decoder, embeds, mask, positions)
        if not torch.isfinite(base[mask_2d.bool()]).all():
            raise MaskCheckError(f"{mode}/{impl}: non-finite outputs (NaN/inf) on real tokens")
        min_change, n_probes = float("inf"), 0
        for rel in (0, prefix_len - 1, prefix_len, prefix_len + 1, None):
            # Each sample is perturbed at its own position: rel after its first real token, or its
            # first pad position (rel=None).
            cols = [
                s + rel if rel is not None else (e if e < seq_len else 0)
                for s, e in zip(starts, ends, strict=True)
            ]
            bumped = embeds.clone()
            bumped[rows, cols] += 3.0 * torch.randn(batch, hidden, generator=gen).to(embeds)
            delta = (_outputs(decoder, bumped, mask, positions) - base).abs().amax(-1)
            for b in range(batch):
                if rel is None and mask_2d[b].all():
                    continue
                changed = {i for i in range(starts[b], ends[b]) if delta[b, i] > atol}
                expected = _expected_changed(mode, rel, prefix_len, starts[b], ends[b])
                if changed != expected:
                    msg = _describe(rel, prefix_len, changed - expected, expected - changed)
                    raise MaskCheckError(f"{mode}/{impl}, sample {b}: {msg}")
                if expected:
                    min_change = min(min_change, float(delta[b, sorted(expected)].min()))
                n_probes += 1
    finally:
        decoder.train(was_training)
    return CheckResult(mode, impl, prefix_len, seq_len, n_probes, min_change)
