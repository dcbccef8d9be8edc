"""Qwen2-VL and Qwen2.5-VL: dynamic resolution (patches of all images concatenated, one
``image_grid_thw`` row per image) and M-RoPE positions from the model's own ``get_rope_index``."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.models.families.base import Family
from harness.models.families.tiny_parts import TEXT, save, seeded, token_ids, tokenizer

SPECIALS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
CHAT_SPECIALS = ("<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""The shape of Qwen2-VL-Instruct's template (without its default system turn)."""


def _processor_class(base):
    """``base`` built without a video processor (video processors need torchvision)."""

    class ImagesOnly(base):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kw):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kw)

    return ImagesOnly


class Qwen2VL(Family):
    name = "qwen2_vl"
    model_types = ("qwen2_vl",)
    vision_tower = "model.visual"
    projector = "model.visual.merger"
    span_tokens = ("<|vision_start|>", "<|vision_end|>")
    sequence_keys = ("mm_token_type_ids",)
    seed_prompt = "<|vision_start|>{image}<|vision_end|>\n\nQuestion: {question}\n\nAnswer:"

    def _classes(self):
        from transformers import (
            Qwen2VLConfig,
            Qwen2VLForConditionalGeneration,
            Qwen2VLImageProcessorPil,
            Qwen2VLProcessor,
        )

        return (
            Qwen2VLConfig,
            Qwen2VLForConditionalGeneration,
            Qwen2VLProcessor,
            Qwen2VLImageProcessorPil,
        )

    def load_processor(self, path: str, remote: bool):
        """``AutoProcessor``; without torchvision that fails on the video processor, and then the
        processor is rebuilt from its saved image processor and tokenizer (no video processor)."""
        from transformers import AutoImageProcessor, AutoTokenizer

        try:
            processor = super().load_processor(path, remote)
            if hasattr(processor, "image_processor"):
                return processor
        except (OSError, ImportError, ValueError):  # its video processor needs torchvision
            pass
        base = self._classes()[2]
        images = AutoImageProcessor.from_pretrained(path, trust_remote_code=remote)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=remote)
        return _processor_class(base)(images, tok, chat_template=tok.chat_template)

    def position_ids(self, vlm, input_ids, attention_mask, extras) -> torch.Tensor:
        """``(3, B, S)`` M-RoPE positions (temporal, height, width) from ``get_rope_index``."""
        positions, _ = vlm.model.get_rope_index(
            input_ids,
            mm_token_type_ids=extras["mm_token_type_ids"],
            image_grid_thw=extras.get("image_grid_thw"),
            attention_mask=attention_mask,
        )
        return positions

    def _configs(self, tok, ids):
        text = TEXT | token_ids(tok)
        text["rope_parameters"] = {
            "rope_type": "default",
            "mrope_section": [2, 3, 3],
            "rope_theta": 1e4,
        }
        vision = dict(
            depth=1,
            embed_dim=32,
            hidden_size=32,
            num_heads=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        )
        return text, vision

    def write_tiny(self, out: Path) -> None:
        config_cls, model_cls, processor_cls, images_cls = self._classes()
        tok = tokenizer(SPECIALS + CHAT_SPECIALS)
        ids = tok.convert_tokens_to_ids(list(SPECIALS))
        text, vision = self._configs(tok, ids)
        config = config_cls(
            text_config=text,
            vision_config=vision,
            image_token_id=ids[0],
            video_token_id=ids[1],
            vision_start_token_id=ids[2],
            vision_end_token_id=ids[3],
        )
        # 4 to 16 merged tokens per image: 96x32 captchas give a 2x4 grid of merged patches.
        merged = 2 * vision["patch_size"]  # pixels per side of one merged token
        images = images_cls(
            size={"shortest_edge": 4 * merged**2, "longest_edge": 16 * merged**2},
            patch_size=vision["patch_size"],
            merge_size=2,
            temporal_patch_size=2,
        )
        processor = _processor_class(processor_cls)(images, tok, chat_template=CHAT_TEMPLATE)
        save(seeded(model_cls, config), processor, out, processor_cls.__name__)


class Qwen25VL(Qwen2VL):
    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)

    def _classes(self):
        from transformers import (
            Qwen2_5_VLConfig,
            Qwen2_5_VLForConditionalGeneration,
            Qwen2_5_VLProcessor,
            Qwen2VLImageProcessorPil,
        )

        return (
            Qwen2_5_VLConfig,
            Qwen2_5_VLForConditionalGeneration,
            Qwen2_5_VLProcessor,
            Qwen2VLImageProcessorPil,
        )

    def _configs(self, tok, ids):
        text, _ = super()._configs(tok, ids)
        vision = dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=32,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[1],
        )
        return text, vision


class Qwen3VL(Qwen2VL):
    name = "qwen3_vl"
    model_types = ("qwen3_vl",)

    def _classes(self):
        from transformers import (
            Qwen2VLImageProcessorPil,
            Qwen3VLConfig,
            Qwen3VLForConditionalGeneration,
            Qwen3VLProcessor,
        )

        return (
            Qwen3VLConfig,
            Qwen3VLForConditionalGeneration,
            Qwen3VLProcessor,
            Qwen2VLImageProcessorPil,
        )

    def _configs(self, tok, ids):
        text, _ = super()._configs(tok, ids)
        text["head_dim"] = 16
        text["rope_parameters"] = {
            "rope_type": "default",
            "mrope_section": [4, 2, 2],
            "mrope_interleaved": True,
            "rope_theta": 1e4,
        }
        vision = dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=32,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            num_position_embeddings=16,
            deepstack_visual_indexes=[0],
        )
        return text, vision
