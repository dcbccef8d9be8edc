"""data.prompt_format (seed | chat_template) and the seed layout's prefix mode."""

from __future__ import annotations

import torch
from PIL import Image

from harness.cell.attention import prefix_ids_from_mask
from harness.contracts.config import parse_cell_config
from harness.contracts.identity import config_hash
from harness.models.vlm_masks import block_ids, image_span
from tests.models.helpers import load


def test_chat_template_prompts_are_the_processors_own(tiny_dirs):
    model = load(tiny_dirs["qwen2_vl"])
    model.set_prompt_format("chat_template")
    image = Image.new("RGB", (96, 32), (10, 20, 30))
    ids, _ = model.encode_sample("Read it", image)
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Read it"}]}
    ]
    text = model.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>user\n<|vision_start|>")
    assert ids == list(model.processor(images=[image], text=[text])["input_ids"][0])
    seed_ids, _ = load(tiny_dirs["qwen2_vl"]).encode_sample("Read it", image)
    assert seed_ids != ids


def test_prompt_format_is_part_of_the_cell_id():
    base = {"model": {"name": "hf-vlm", "path": "models/x"}}
    chat = {**base, "data": {"prompt_format": "chat_template"}}
    assert config_hash(parse_cell_config(base)) != config_hash(parse_cell_config(chat))


def test_prefix_bidirectional_on_the_seed_layout_is_tiny_vlms_prefix(tiny_dirs):
    """[BOS] + image + text: the block is BOS + image, exactly prefix_ids_from_mask's prefix."""
    for path in (tiny_dirs["llava"], tiny_dirs["paligemma"]):
        model = load(path)
        enc = [model.encode_sample(q, Image.new("RGB", (40, 40))) for q in ("a", "a longer one")]
        for left in (False, True):
            batch = model.collate([e[0] for e in enc], None, [e[1] for e in enc], left)
            span = image_span(batch.input_ids, model.span_ids)
            ours = block_ids("prefix_bidirectional", span, batch.attention_mask, None)
            old = prefix_ids_from_mask(batch.attention_mask, model.prefix_len())
            assert torch.equal(ours, old)
