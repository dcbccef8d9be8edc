"""Did the checkpoint change the model? Logits of one fixed, tiny probe input, before and after.

The probe is one forward pass over ``PROBE_LENGTH`` tokens (plus the image prefix of harness
vision models, fed a fixed pixel tensor so the vision and projector weights are part of the
proof). Only the last position's logits are computed (``logits_to_keep=1`` where the model
supports it): the last position depends on every earlier one through attention, so every
weight on the path still counts, and the LM head runs as a matrix-vector product.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from loaders.load_report import ProbeResult

PROBE_LENGTH = 4
PROBE_SEED = 1234
# Logit differences below this are numerical noise, not a trained change.
CHANGE_ATOL = 1e-6


def vocab_size(model: nn.Module) -> int:
    """Rows of the model's input embedding (falls back to ``config.vocab_size``)."""
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    if emb is not None and hasattr(emb, "num_embeddings"):
        return int(emb.num_embeddings)
    if hasattr(model, "decoder"):
        return vocab_size(model.decoder)
    return int(model.config.vocab_size)


def probe_ids(vocab: int, low: int = 0) -> torch.Tensor:
    """Deterministic ``[1, PROBE_LENGTH]`` token ids in ``[low, vocab)``."""
    g = torch.Generator().manual_seed(PROBE_SEED)
    return torch.randint(low, vocab, (1, PROBE_LENGTH), generator=g)


def _image_prefix(model: nn.Module) -> tuple[list[int], torch.Tensor] | None:
    """``(prefix ids, pixel_values)`` for a harness PrefixLM with a vision part, else None."""
    n = int(getattr(model, "image_tokens", 0) or 0)
    image_id = getattr(model, "image_token_id", None)
    size = getattr(model, "input_size", None)
    if not n or image_id is None or size is None:
        return None
    bos = getattr(getattr(model, "tokenizer", None), "bos_token_id", None)
    g = torch.Generator().manual_seed(PROBE_SEED + 1)
    pixels = torch.rand((1, 1, *size), generator=g) * 2 - 1
    return ([bos] if bos is not None else []) + [int(image_id)] * n, pixels


def probe_inputs(model: nn.Module, low: int = 0) -> dict[str, torch.Tensor]:
    """The probe's forward kwargs: ``input_ids`` (+ ``pixel_values`` for harness vision models).

    ``PROBE_LENGTH`` tokens, so attention's query/key weights shape the result too.
    """
    ids = probe_ids(vocab_size(model), low=low)
    prefix = _image_prefix(model)
    if prefix is None:
        return {"input_ids": ids}
    prefix_ids, pixels = prefix
    image_id = int(model.image_token_id)
    ids = ids.masked_fill(ids == image_id, 0)  # exactly image_tokens placeholders
    return {"input_ids": torch.cat([torch.tensor([prefix_ids]), ids], 1), "pixel_values": pixels}


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU when it has none)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _model_dtype(model: nn.Module) -> torch.dtype:
    p = next((p for p in model.parameters() if p.is_floating_point()), None)
    return p.dtype if p is not None else torch.float32


def _accepts_logits_to_keep(model: nn.Module) -> bool:
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "logits_to_keep" in params


@torch.no_grad()
def logits(model: nn.Module, inputs: dict[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Float32 CPU logits ``[1, vocab]`` of the probe's last position (training flag restored)."""
    if isinstance(inputs, torch.Tensor):
        inputs = {"input_ids": inputs}
    device = model_device(model)
    kw: dict[str, Any] = {k: v.to(device) for k, v in inputs.items()}
    if "pixel_values" in kw:
        kw["pixel_values"] = kw["pixel_values"].to(_model_dtype(model))
    if _accepts_logits_to_keep(model):
        kw["logits_to_keep"] = 1
    was_training = model.training
    model.eval()
    try:
        out = model(**kw)
    finally:
        model.train(was_training)
    out = out.logits if hasattr(out, "logits") else out[0]
    return out[:, -1, :].float().cpu()


def not_compared() -> ProbeResult:
    """The verdict when no base model was given: nothing to compare against, no forward run.

    A forward pass over every weight costs about as much as the load itself, and without a base
    it could only show that the logits are finite, not that the checkpoint changed anything.
    """
    return ProbeResult(
        [],
        False,
        None,
        None,
        None,
        "no base model given, so nothing to compare against: pass base_model=... to prove the "
        "checkpoint changes the model's logits",
    )


def compare(
    before: torch.Tensor | None, after: torch.Tensor, inputs: dict[str, torch.Tensor]
) -> ProbeResult:
    """ProbeResult of two logit tensors (common vocabulary only, in case the vocab grew)."""
    ids = inputs["input_ids"][0].tolist()
    finite = bool(torch.isfinite(after).all())
    if before is None:
        return ProbeResult(
            ids,
            False,
            None,
            None,
            finite,
            "no base model to compare: the probe only shows the loaded model runs and its "
            "logits are finite, not that the trained weights differ from any base",
        )
    v = min(before.shape[-1], after.shape[-1])
    diff = float((before[..., :v] - after[..., :v]).abs().max())
    return ProbeResult(ids, True, diff, diff > CHANGE_ATOL, finite)
