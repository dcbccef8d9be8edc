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
VISION = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=1,
    num_attention_heads=2,
    image_size=56,
    patch_size=14,
)
"""The tiny vision tower: image_size / patch_size divisible by scale_factor 2; 4 tokens a crop."""


class Idefics3(Family):
    name = "idefics3"
    model_types = ("idefics3",)
    language_model = "model.text_model"
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
        config = Idefics3Config(
            vision_config=VISION,
            text_config=TEXT | dict(model_type="llama", **token_ids(tok)),
            image_token_id=tok.convert_tokens_to_ids("<image>"),
            scale_factor=2,
        )
        images = Idefics3ImageProcessorPil(
            size={"longest_edge": 112}, max_image_size={"longest_edge": 56}
        )
        processor = Idefics3Processor(images, tok, image_seq_len=4, chat_template=CHAT_TEMPLATE)
        save(seeded(Idefics3ForConditionalGeneration, config), processor, out)


class SmolVLM(Idefics3):
    """SmolVLM: Idefics3's prompt strings and crops. Its own processor needs ``num2words`` and a
    torchvision video processor; without them an ``Idefics3Processor`` over its saved image
    processor and tokenizer builds the same prompts."""

    name = "smolvlm"
    model_types = ("smolvlm",)

    def load_processor(self, path: str, remote: bool):
        import json
        from pathlib import Path

        from transformers import AutoImageProcessor, AutoTokenizer, Idefics3Processor

        try:
            processor = super().load_processor(path, remote)
            if hasattr(processor, "image_processor"):
                return processor
        except (OSError, ImportError, ValueError):  # num2words / torchvision missing
            pass
        saved = json.loads((Path(path) / "processor_config.json").read_text(encoding="utf-8"))
        images = AutoImageProcessor.from_pretrained(path, trust_remote_code=remote)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=remote)
        return Idefics3Processor(
            images,
            tok,
            image_seq_len=saved.get("image_seq_len", 169),
            chat_template=tok.chat_template,
        )

    def write_tiny(self, out: Path) -> None:
        from transformers import (
            Idefics3Processor,
            SmolVLMConfig,
            SmolVLMForConditionalGeneration,
            SmolVLMImageProcessorPil,
        )

        tok = tokenizer((*SPECIALS, "<|im_start|>"))
        config = SmolVLMConfig(
            vision_config=VISION,
            text_config=TEXT | dict(model_type="llama", **token_ids(tok)),
            image_token_id=tok.convert_tokens_to_ids("<image>"),
            scale_factor=2,
        )
        images = SmolVLMImageProcessorPil(
            size={"longest_edge": 112}, max_image_size={"longest_edge": 56}
        )
        processor = Idefics3Processor(images, tok, image_seq_len=4, chat_template=CHAT_TEMPLATE)
        model = seeded(SmolVLMForConditionalGeneration, config)
        save(model, processor, out, "SmolVLMProcessor")
