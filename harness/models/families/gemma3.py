"""Gemma 3: ``<start_of_image>`` expands to ``<start_of_image><image_soft_token>×N<end_of_image>``;
trained with each image's soft tokens as one bidirectional block (``token_type_ids`` 1), text
causal, and sliding-window layers (the mask is a dict by layer type)."""

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

NAMED = {
    "boi_token": "<start_of_image>",
    "eoi_token": "<end_of_image>",
    "image_token": "<image_soft_token>",
}
CHAT_SPECIALS = ("<start_of_turn>", "<end_of_turn>")
CHAT_TEMPLATE = (
    "{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}"
    "\n{% for c in m['content'] %}{% if c['type'] == 'image' %}<start_of_image>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
"""The shape of gemma-3-it's template (without its leading ``<bos>``)."""


class Gemma3(Family):
    name = "gemma3"
    model_types = ("gemma3",)
    span_tokens = (NAMED["boi_token"], NAMED["eoi_token"])
    sequence_keys = ("token_type_ids",)
    native_mask = "each image's soft tokens bidirectional (token_type_ids 1), text causal"

    def placeholder(self, processor) -> str:
        return processor.boi_token

    def processor_inputs(self, processor, text, image):
        return processor(images=[[image]], text=[text], return_tensors="pt")  # nested per sample

    def native_block_ids(self, input_ids, extras, spans) -> torch.Tensor:
        from transformers.models.gemma3.modeling_gemma3 import get_block_sequence_ids_for_mask

        return get_block_sequence_ids_for_mask(extras["token_type_ids"])

    def write_tiny(self, out: Path) -> None:
        from transformers import (
            Gemma3Config,
            Gemma3ForConditionalGeneration,
            Gemma3ImageProcessorPil,
            Gemma3Processor,
        )

        tok = tokenizer(CHAT_SPECIALS, NAMED)
        ids = {k: tok.convert_tokens_to_ids(v) for k, v in NAMED.items()}
        text = TEXT | token_ids(tok)
        text |= dict(
            head_dim=16,
            sliding_window=4,
            layer_types=["sliding_attention", "full_attention"],
            query_pre_attn_scalar=16,
        )
        vision = siglip_vision(7)
        config = Gemma3Config(
            text_config=text,
            vision_config=vision,
            mm_tokens_per_image=4,
            image_token_index=ids["image_token"],
            boi_token_index=ids["boi_token"],
            eoi_token_index=ids["eoi_token"],
        )
        images = Gemma3ImageProcessorPil(size={"height": 28, "width": 28})
        processor = Gemma3Processor(images, tok, image_seq_length=4, chat_template=CHAT_TEMPLATE)
        save(seeded(Gemma3ForConditionalGeneration, config), processor, out)
