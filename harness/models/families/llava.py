"""LLaVA (CLIP/SigLIP vision, a projector, any decoder): the defaults of ``Family``."""

from __future__ import annotations

from pathlib import Path

from harness.models.families.base import Family
from harness.models.families.tiny_parts import CLIP_VISION, TEXT, save, seeded, token_ids, tokenizer

CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %} "
    "{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
"""The shape of llava-1.5-hf's template: ``USER: <image>\\n{question} ASSISTANT:``."""


class Llava(Family):
    name = "llava"
    model_types = ("llava",)

    def write_tiny(self, out: Path) -> None:
        from transformers import (
            LlavaConfig,
            LlavaForConditionalGeneration,
            LlavaImageProcessorPil,
            LlavaProcessor,
        )

        tok = tokenizer()
        config = LlavaConfig(
            vision_config=CLIP_VISION,
            text_config=TEXT | dict(model_type="llama", **token_ids(tok)),
            image_token_index=tok.convert_tokens_to_ids("<image>"),
            vision_feature_layer=-2,
            vision_feature_select_strategy="default",
        )
        images = LlavaImageProcessorPil(
            size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
        )
        processor = LlavaProcessor(
            image_processor=images,
            tokenizer=tok,
            patch_size=14,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,
            chat_template=CHAT_TEMPLATE,
        )
        save(seeded(LlavaForConditionalGeneration, config), processor, out)
