"""Shared pieces of the tiny random-init family folders (``python -m harness.models.tiny``)."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.models.tokenizer import build_char_tokenizer

TEXT = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
)
"""Language-model sizes every tiny family shares (the family adds its own keys)."""

CLIP_VISION = dict(
    model_type="clip_vision_model",
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=28,
    patch_size=14,
    projection_dim=32,
)
"""The tiny CLIP tower of the LLaVA families (28 x 28 images, 4 patches)."""


def siglip_vision(patch_size: int) -> dict:
    """The tiny SigLIP tower of the Gemma families (28 x 28 images)."""
    return dict(
        model_type="siglip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=28,
        patch_size=patch_size,
    )


def tokenizer(specials: tuple[str, ...] = (), named: dict[str, str] | None = None):
    """The char tokenizer of harness.models.tokenizer with a family's special tokens."""
    return build_char_tokenizer(specials, named)


def token_ids(tok) -> dict[str, int]:
    """``vocab_size`` and the bos/eos/pad ids of ``tok`` for a text config."""
    return dict(
        vocab_size=len(tok),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )


def seeded(model_cls, config, seed: int = 0):
    """``model_cls(config)`` with weights from a fixed seed (the same folder on every machine)."""
    torch.manual_seed(seed)
    return model_cls(config).eval()


def save(model, processor, out: Path, processor_class: str | None = None) -> None:
    """Model, generation config and processor files in ``out``; ``processor_class`` rewrites the
    class named in processor_config.json (a subclass used only to build it without torchvision)."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    if processor_class:
        import json

        path = out / "processor_config.json"
        data = json.loads(path.read_text())
        data["processor_class"] = processor_class
        path.write_text(json.dumps(data, indent=2) + "\n")
