"""Attention masks of ``hf-vlm`` and their self-check, built on transformers' masking utilities.

Every mode is a ``block_sequence_ids`` tensor (``[B, S]``; an equal id >= 0 means those tokens
attend both ways, -1 means causal) handed to ``create_causal_mask`` (and, for models with sliding
layers, a sliding mask with the same blocks), with ``allow_is_causal_skip=False`` so the model
always receives the 4D mask and never falls back to its own (PaliGemma under sdpa without
``token_type_ids`` would attend to the future):

- ``causal``: all -1.
- ``image_bidirectional``: the image's span (its placeholder tokens and the family's wrappers,
  e.g. Qwen's ``<|vision_start|>``/``<|vision_end|>``) is one block.
- ``prefix_bidirectional``: the image's span and all text before it (from the first real token)
  is one block; for the seed layout (``[BOS] + image + text``) this is tiny-vlm's mode.
- ``native``: the family's own training mask (PaliGemma: image + prompt; Gemma 3: each image).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers.masking_utils import (
    blockwise_overlay,
    create_causal_mask,
    sliding_window_overlay,
)

from harness.cell.attention import MaskCheckError

VLM_MODES = ("causal", "image_bidirectional", "prefix_bidirectional", "native")
BIDIRECTIONAL_MODES = ("image_bidirectional", "prefix_bidirectional")


def image_span(input_ids: torch.Tensor, span_ids: list[int]) -> torch.Tensor:
    """``[B, S]`` bool: from each row's first to its last image-related token (one image a row)."""
    hit = torch.isin(input_ids, torch.tensor(span_ids, device=input_ids.device))
    idx = torch.arange(input_ids.shape[1], device=input_ids.device)
    big = input_ids.shape[1]
    first = torch.where(hit, idx, big).amin(-1, keepdim=True)
    last = torch.where(hit, idx, -1).amax(-1, keepdim=True)
    return (idx >= first) & (idx <= last)


def block_ids(
    mode: str, span: torch.Tensor, attention_mask: torch.Tensor, native: torch.Tensor
) -> torch.Tensor:
    """``block_sequence_ids`` of ``mode``; pad positions are always -1."""
    real = attention_mask.bool()
    if mode == "causal":
        inside = torch.zeros_like(real)
    elif mode == "image_bidirectional":
        inside = span
    elif mode == "prefix_bidirectional":
        idx = torch.arange(span.shape[1], device=span.device)
        last = torch.where(span, idx, -1).amax(-1, keepdim=True)
        inside = idx <= last
    elif mode == "native":
        return torch.where(real, native, -1)
    else:
        raise ValueError(
            f"unknown attention.mode {mode!r} for hf-vlm; valid: {', '.join(VLM_MODES)}"
        )
    return torch.where(inside & real, 0, -1).long()


def sliding_window(text_config) -> int | None:
    """The window of the model's sliding layers, or None when it has none."""
    types = getattr(text_config, "layer_types", None) or []
    window = getattr(text_config, "sliding_window", None)
    return window if window and "sliding_attention" in types else None


def build_mask(text_config, inputs_embeds, attention_mask, blocks):
    """The 4D mask for the language model (a dict by layer type when it has sliding layers)."""
    kwargs = dict(
        config=text_config,
        inputs_embeds=inputs_embeds,
        attention_mask=attention_mask,
        cache=None,
        allow_is_causal_skip=False,
    )
    full = create_causal_mask(**kwargs, block_sequence_ids=blocks)
    window = sliding_window(text_config)
    if window is None:
        return full
    sliding = create_causal_mask(
        **kwargs,
        or_mask_function=blockwise_overlay(blocks),
        and_mask_function=sliding_window_overlay(window),
    )
    return {"full_attention": full, "sliding_attention": sliding}


class MaskCache:
    """The last few masks ``build_mask`` gave, by what they depend on (the padding mask, the
    blocks, dtype and device; one model, so one text config). A batch of a fixed-layout dataset
    (every captcha prompt and answer the same length) has the layout of the one before it, and
    transformers builds a mask with block or window functions in Python per call: up to half a
    tiny model's training step on CPU (Gemma 3's sliding layers). The model never writes into
    the masks it is given, so a hit returns the same tensors."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self.entries: dict[tuple, object] = {}

    def get(self, text_config, inputs_embeds, attention_mask, blocks):
        key = (
            inputs_embeds.dtype,
            inputs_embeds.device,
            tuple(attention_mask.shape),
            attention_mask.cpu().numpy().tobytes(),
            blocks.cpu().numpy().tobytes(),
        )
        mask = self.entries.pop(key, None)
        if mask is None:
            mask = build_mask(text_config, inputs_embeds, attention_mask, blocks)
            if len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))  # the least recently used
        self.entries[key] = mask
        return mask


def expected_reach(
    attention_mask: torch.Tensor, blocks: torch.Tensor, layer_windows: list[int | None]
) -> torch.Tensor:
    """``[B, S, S]`` bool: output q depends on input p after the given layers (a window per
    layer, None = full), computed from the mode's definition, not from transformers' mask."""
    s = attention_mask.shape[1]
    real = attention_mask.bool()
    q = torch.arange(s)[:, None]
    k = torch.arange(s)[None, :]
    same = (blocks[:, :, None] == blocks[:, None, :]) & (blocks[:, :, None] >= 0)
    base = ((k <= q)[None] | same) & real[:, None, :] & real[:, :, None]
    eye = torch.eye(s, dtype=torch.bool)[None].expand_as(base)
    reach = eye.clone()
    for window in layer_windows:
        allowed = base if window is None else base & (k > q - window)[None]
        step = (allowed | eye).float()
        reach = (step @ reach.float()) > 0
    return reach


@dataclass
class VLMCheck:
    """Outcome of a passing ``check_vlm_mask``: what the probes observed."""

    mode: str
    impl: str
    probes: int
    image_sees_later_image: bool
    """An image token's output moved when a later image token moved."""
    text_sees_future: bool
    """A token outside every bidirectional block moved when a later token moved (never: the
    check fails first)."""
    min_change: float


@torch.no_grad()
def check_vlm_mask(
    language_model: torch.nn.Module,
    make_mask: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], object],
    attention_mask: torch.Tensor,
    blocks: torch.Tensor,
    span: torch.Tensor,
    positions: torch.Tensor,
    layer_windows: list[int | None],
    mode: str,
    impl: str,
    atol: float = 1e-6,
) -> VLMCheck:
    """Perturb each position of a real batch layout (random embeddings) and verify that exactly
    the outputs ``expected_reach`` names move; raises ``MaskCheckError`` naming the first wrong
    position. Use an fp32 model: ``atol`` assumes it."""
    param = next(language_model.parameters())
    b, s = attention_mask.shape
    hidden = language_model.config.hidden_size
    gen = torch.Generator().manual_seed(0)
    embeds = torch.randn(b, s, hidden, generator=gen).to(param.device, param.dtype)
    mask = make_mask(embeds, attention_mask, blocks)
    reach = expected_reach(attention_mask.cpu(), blocks.cpu(), layer_windows)
    real = attention_mask.bool().cpu()

    def outputs(x):
        out = language_model(inputs_embeds=x, attention_mask=mask, position_ids=positions)
        return out.last_hidden_state.float().cpu()

    was_training = language_model.training
    language_model.eval()
    seen_image = seen_future = False
    min_change, probes = float("inf"), 0
    try:
        base = outputs(embeds)
        for p in range(s):
            bumped = embeds.clone()
            bumped[:, p] += 3.0 * torch.randn(b, hidden, generator=gen).to(embeds)
            delta = (outputs(bumped) - base).abs().amax(-1)
            for row in range(b):
                changed = (delta[row] > atol) & real[row]
                expected = reach[row, :, p] & real[row]
                if not torch.equal(changed, expected):
                    leak = (changed & ~expected).nonzero().flatten().tolist()
                    blocked = (expected & ~changed).nonzero().flatten().tolist()
                    raise MaskCheckError(
                        f"{mode}/{impl}, sample {row}: perturbing position {p}: outputs "
                        f"{leak[:8]} saw it but must not; outputs {blocked[:8]} must but did not"
                    )
                earlier = changed.clone()
                earlier[p:] = False
                if bool(span[row, p]) and bool((earlier & span[row].cpu()).any()):
                    seen_image = True
                if bool((earlier & (blocks[row].cpu() < 0)).any()):
                    seen_future = True
                if expected.any():
                    min_change = min(min_change, float(delta[row][expected].min()))
                probes += 1
    finally:
        language_model.train(was_training)
    if seen_future:
        raise MaskCheckError(f"{mode}/{impl}: a causal token saw a later token")
    return VLMCheck(mode, impl, probes, seen_image, seen_future, min_change)
