"""Did the checkpoint change the model? Logits of one fixed probe input, before and after."""

from __future__ import annotations

import torch
from torch import nn

from loaders.report import ProbeResult

PROBE_LENGTH = 8
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


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU when it has none)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Float32 CPU logits of ``model(input_ids=ids)`` in eval mode (training flag restored)."""
    was_training = model.training
    model.eval()
    try:
        try:
            out = model(input_ids=ids.to(model_device(model)))
        except TypeError:
            # Wrappers whose forward takes a batch object (the harness's PrefixLM): probe the
            # text decoder, which holds every weight a text-only probe can see.
            decoder = getattr(model, "decoder", None)
            if decoder is None:
                raise
            out = decoder(input_ids=ids.to(model_device(model)))
    finally:
        model.train(was_training)
    return (out.logits if hasattr(out, "logits") else out[0]).float().cpu()


def compare(before: torch.Tensor | None, after: torch.Tensor, ids: torch.Tensor) -> ProbeResult:
    """ProbeResult of two logit tensors (common vocabulary only, in case the vocab grew)."""
    finite = bool(torch.isfinite(after).all())
    if before is None:
        return ProbeResult(ids[0].tolist(), False, None, None, finite, "no base model to compare")
    v = min(before.shape[-1], after.shape[-1])
    diff = float((before[..., :v] - after[..., :v]).abs().max())
    return ProbeResult(ids[0].tolist(), True, diff, diff > CHANGE_ATOL, finite)
