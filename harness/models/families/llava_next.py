"""LLaVA-NeXT: any-resolution tiles (``pixel_values`` ``[N, tiles, 3, h, w]``, zero-padded to the
most tiles in a batch) and ``image_sizes``; everything else as LLaVA."""

from __future__ import annotations

from pathlib import Path

from harness.models.families.base import Family
from harness.models.families.llava import CHAT_TEMPLATE
from harness.models.families.tiny_parts import CLIP_VISION, TEXT, save, seeded, token_ids, tokenizer

PINPOINTS = [[28, 56], [56, 28], [56, 56]]


class LlavaNext(Family):
    name = "llava_next"
    model_types = ("llava_next",)

    def write_tiny(self, out: Path) -> None:
        from transformers import (
            LlavaNextConfig,
            LlavaNextForConditionalGeneration,
            LlavaNextImageProcessorPil,
            LlavaNextProcessor,
        )

        tok = tokenizer()
        config = LlavaNextConfig(
            vision_config=CLIP_VISION,
            text_config=TEXT | dict(model_type="llama", **token_ids(tok)),
            image_token_index=tok.convert_tokens_to_ids("<image>"),
            image_grid_pinpoints=PINPOINTS,
            vision_feature_layer=-2,
            vision_feature_select_strategy="default",
        )
        images = LlavaNextImageProcessorPil(
            size={"shortest_edge": 28},
            crop_size={"height": 28, "width": 28},
            image_grid_pinpoints=PINPOINTS,
        )
        processor = LlavaNextProcessor(
            image_processor=images,
            tokenizer=tok,
            patch_size=14,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,
            chat_template=CHAT_TEMPLATE,
        )
        save(seeded(LlavaNextForConditionalGeneration, config), processor, out)
