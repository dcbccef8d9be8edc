"""Idefics3 (and SmolVLM's layout): each image is split into crops plus a global view, written as
``<fake_token_around_image><row_r_col_c><image>×L ... <global-img><image>×L<fake_token_around_image>``;
``pixel_values`` ``[N, crops, 3, S, S]`` and ``pixel_attention_mask`` are zero-padded to the most
crops in a batch (the model drops all-zero crops)."""

from __future__ import annotations

from pathlib import Path

from harness.models.families.base import Family
from harness.models.families.tiny_parts import TEXT, save, seeded, token_ids, tokenizer

FAKE = "<fake_token_around_image>"
SPECIALS = (
    FAKE,
    "<end_of_utterance>",
    "<global-img>",
    *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)),
)
CHAT_TEMPLATE = (
    "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}:{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
"""The shape of Idefics3-8B-Llama3's template: ``User:<image>{question}<end_of_utterance>``."""


class Idefics3(Family):
    name = "idefics3"
    model_types = ("idefics3",)
    vision_tower = "model.vision_model"
    projector = "model.connector"
    span_tokens = (FAKE,)

    def write_tiny(self, out: Path) -> None:
        from transformers import (
            Idefics3Config,
            Idefics3ForConditionalGeneration,
            Idefics3ImageProcessorPil,
            Idefics3Processor,
        )

        tok = tokenizer((*SPECIALS, "<|im_start|>"))
        vision = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=56,
            patch_size=14,
        )
        config = Idefics3Config(
            vision_config=vision,
            text_config=TEXT | dict(model_type="llama", **token_ids(tok)),
            image_token_id=tok.convert_tokens_to_ids("<image>"),
            scale_factor=2,
        )
        images = Idefics3ImageProcessorPil(
            size={"longest_edge": 112}, max_image_size={"longest_edge": 56}
        )
        processor = Idefics3Processor(images, tok, image_seq_len=4, chat_template=CHAT_TEMPLATE)
        save(seeded(Idefics3ForConditionalGeneration, config), processor, out)
