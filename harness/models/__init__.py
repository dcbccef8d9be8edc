"""Model registry: one ordered mapping from ``model.name`` to its builder."""

from __future__ import annotations

from collections.abc import Callable

from harness.contracts.config import ModelConfig
from harness.models.hf import ModelLoadError, build_hf_causal_lm
from harness.models.hf_vlm import HFVisionLM, build_hf_vlm
from harness.models.prefix_lm import EncodedBatch, PrefixLM, answer_loss
from harness.models.tiny_vlm import TinyVLM, build_tiny_vlm

MODELS: dict[str, Callable[[ModelConfig], PrefixLM]] = {
    "tiny-vlm": build_tiny_vlm,
    "hf-causal-lm": build_hf_causal_lm,
    "hf-vlm": build_hf_vlm,
}


def build_model(cfg: ModelConfig) -> tuple[PrefixLM, object]:
    """Build the model named by ``cfg.name``; returns ``(model, tokenizer)``."""
    try:
        builder = MODELS[cfg.name]
    except KeyError:
        raise ModelLoadError(
            f"model.name {cfg.name!r} is not available; choose one of: {', '.join(MODELS)}"
        ) from None
    model = builder(cfg)
    return model, model.tokenizer


__all__ = [
    "MODELS",
    "EncodedBatch",
    "HFVisionLM",
    "ModelLoadError",
    "PrefixLM",
    "TinyVLM",
    "answer_loss",
    "build_hf_vlm",
    "build_model",
]
