"""PaliGemma: image tokens, then ``<bos>`` + prefix + ``\\n``; trained with a bidirectional
image + prefix block (``token_type_ids`` 0) and a causal suffix (the answer, type 1)."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.models.families.base import Family
from harness.models.families.tiny_parts import (
    TEXT,
    save,
    seeded,
    siglip_vision,
    token_ids,
    tokenizer,
)


class PaliGemma(Family):
    name = "paligemma"
    model_types = ("paligemma",)
    sequence_keys = ("token_type_ids",)
    answer_type = 1
    native_mask = "image + prompt bidirectional (token_type_ids 0), answer causal"
    seed_prompt = "{image}\n\nQuestion: {question}\n\nAnswer:"

    def position_ids(self, vlm, input_ids, attention_mask, extras) -> torch.Tensor:
        """PaliGemma's positions count from 1."""
        return super().position_ids(vlm, input_ids, attention_mask, extras) + 1

    def native_block_ids(self, input_ids, extras, spans) -> torch.Tensor:
        return torch.where(extras["token_type_ids"] == 0, 0, -1)

    def write_tiny(self, out: Path) -> None:
        from transformers import (
            PaliGemmaConfig,
            PaliGemmaForConditionalGeneration,
            PaliGemmaProcessor,
            SiglipImageProcessorPil,
        )

        tok = tokenizer()
        images = SiglipImageProcessorPil(size={"height": 28, "width": 28}, image_seq_length=4)
        processor = PaliGemmaProcessor(images, tok)  # adds <image> and the <loc>/<seg> tokens
        vision = siglip_vision(14)
        text = TEXT | token_ids(tok) | dict(model_type="gemma", head_dim=16)
        config = PaliGemmaConfig(
            vision_config=vision,
            text_config=text,
            image_token_index=tok.convert_tokens_to_ids("<image>"),
            projection_dim=32,
        )
        save(seeded(PaliGemmaForConditionalGeneration, config), processor, out)
