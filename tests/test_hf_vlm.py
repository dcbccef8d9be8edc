"""hf-vlm: a tiny Llava (CLIP vision + Llama text) and its processor, built and saved in the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from harness.cell.run import run_cell
from harness.contracts.config import ModelConfig, parse_cell_config
from harness.models import ModelLoadError, build_model
from harness.models.hf_vlm import HFVisionLM, build_hf_vlm
from harness.models.prefix_lm import IGNORE_INDEX, PROMPT_TEMPLATE

PATCHES = (32 // 8) ** 2  # image_size 32, patch_size 8; "default" drops CLS, so 16 tokens


def _save_tiny_llava(path: Path, bos: bool = False) -> Path:
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from harness.models.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()
    if bos:  # like Llama tokenizers: the tokenizer itself prepends BOS
        from tokenizers.processors import TemplateProcessing

        tok._tokenizer.post_processor = TemplateProcessing(
            single="<bos> $A", special_tokens=[("<bos>", tok.bos_token_id)]
        )
    torch.manual_seed(0)
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        image_token_id=tok.convert_tokens_to_ids("<image>"),
    )
    LlavaForConditionalGeneration(config).save_pretrained(path)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    LlavaProcessor(
        image_processor=images,
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=None,
    ).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory) -> Path:
    return _save_tiny_llava(tmp_path_factory.mktemp("hf_vlm") / "llava")


@pytest.fixture(scope="module")
def model(llava_dir) -> HFVisionLM:
    return build_hf_vlm(ModelConfig(name="hf-vlm", path=str(llava_dir)))


def test_prompt_ids_match_the_processor(model):
    assert model.image_tokens == PATCHES and model.prefix_len() == PATCHES
    image = Image.new("RGB", (96, 32), (20, 200, 90))
    ids = model.prompt_ids("What is 2+2?")
    text = "<image>" + PROMPT_TEMPLATE.format(question="What is 2+2?")
    out = model.processor(images=[image], text=[text], return_tensors="pt")
    assert ids == out["input_ids"][0].tolist() and ids.count(model.image_token_id) == PATCHES
    assert torch.equal(model.preprocess(image), out["pixel_values"][0])
    assert model.answer_ids("42")[-1] == model.tokenizer.eos_token_id


def test_a_bos_adding_tokenizer_keeps_processor_ids(tmp_path):
    model = build_hf_vlm(ModelConfig(name="hf-vlm", path=str(_save_tiny_llava(tmp_path, True))))
    ids = model.prompt_ids("hi")
    text = "<image>" + PROMPT_TEMPLATE.format(question="hi")
    expected = model.processor(images=[Image.new("RGB", (40, 40))], text=[text])["input_ids"][0]
    assert ids == list(expected) and ids[0] == model.tokenizer.bos_token_id
    assert ids[1 : 1 + PATCHES] == [model.image_token_id] * PATCHES
    assert model.prefix_len() == 1 + PATCHES


def test_forward_and_generate_on_collated_batches(model):
    model.set_attention("causal", "sdpa")
    pix = torch.stack([model.preprocess(Image.new("RGB", (96, 32), c)) for c in ("white", "red")])
    prompts = [model.prompt_ids("q"), model.prompt_ids("a longer question")]
    answers = [model.answer_ids("12"), model.answer_ids("3")]
    batch = model.collate(prompts, answers, pix)
    logits = model(batch).logits
    assert logits.shape == (*batch.input_ids.shape, len(model.tokenizer))
    assert batch.labels[0, len(prompts[0]) - 1] == IGNORE_INDEX
    assert batch.labels[0, len(prompts[0])] == answers[0][0]
    model.set_attention("causal", "eager_dense")
    assert torch.allclose(model(batch).logits, logits, atol=1e-5)
    assert model.base_vlm().config._attn_implementation == "eager"
    model.set_attention("causal", "sdpa")
    left = model.generate_greedy(model.collate(prompts, None, pix, left_pad=True), 5)
    alone = [
        model.generate_greedy(model.collate([p], None, pix[i : i + 1]), 5)[0]
        for i, p in enumerate(prompts)
    ]
    assert len(left) == 2 and left == alone and all(len(r) <= 5 for r in left)
    first = model(model.collate(prompts[:1], None, pix[:1])).logits[0, -1].argmax()
    assert model.tokenizer.eos_token_id not in left[0]
    assert not alone[0] or alone[0][0] == int(first)


def test_flash_attention_is_refused_where_it_would_drop_the_mask(model):
    # hf-vlm now runs every attention mode (tests/models); flash_attention_2 keeps only padding
    with pytest.raises(ModelLoadError, match=r"flash_attention_2 would drop"):
        model.set_attention("prefix_bidirectional", "flash_attention_2")
    model.set_attention("causal", "sdpa")


def test_load_errors_are_one_line(tmp_path, llava_dir):
    with pytest.raises(ModelLoadError, match="nope"):
        build_hf_vlm(ModelConfig(name="hf-vlm", path=str(tmp_path / "nope")))
    with pytest.raises(ModelLoadError, match=r"model\.path is required"):
        build_hf_vlm(ModelConfig(name="hf-vlm"))
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.models.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()  # a text-only model: no image processor
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
        )
    ).save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    with pytest.raises(ModelLoadError, match="image processor") as err:
        build_hf_vlm(ModelConfig(name="hf-vlm", path=str(tmp_path / "lm")))
    assert "\n" not in str(err.value)
    model, _ = build_model(ModelConfig(name="hf-vlm", path=str(llava_dir)))
    assert isinstance(model, HFVisionLM)


def _cell(cache: Path, path: Path, **train) -> dict:
    return {
        "data": {
            "kind": "captcha",
            "cache_dir": str(cache),
            "train_count": 16,
            "val_count": 4,
            "test_count": 4,
        },
        "model": {"name": "hf-vlm", "path": str(path)},
        "train": {
            "max_steps": 2,
            "micro_batch": 4,
            "eval_every": 2,
            "warmup_steps": 1,
            "lr": 1e-3,
            **train,
        },
        "eval": {"batch_size": 4, "max_new_tokens": 4},
        "runtime": {"threads": 1},
    }


@pytest.mark.parametrize(
    "train",
    [
        {},
        {"method": "lora", "lora": {"target_modules": ["q_proj", "v_proj"], "extra_trainable": []}},
    ],
    ids=["full", "lora"],
)
def test_cell_runs_end_to_end(tmp_path, llava_dir, train):
    out = tmp_path / "cell"
    assert run_cell(parse_cell_config(_cell(tmp_path / "data", llava_dir, **train)), out) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "completed" and summary["metrics"]["n"] == 4


def test_cell_refuses_a_missing_chat_template_cleanly(tmp_path, llava_dir):
    cfg = _cell(tmp_path / "data", llava_dir)
    cfg["data"]["prompt_format"] = "chat_template"  # this processor has no chat template
    out = tmp_path / "cell"
    assert run_cell(parse_cell_config(cfg), out) == 1
    err = json.loads((out / "summary.json").read_text())["error"]
    assert err["type"] == "ModelLoadError" and "chat_template" in err["message"]
    assert "\n" not in err["message"]


def test_freeze_vision_freezes_the_vision_tower(llava_dir):
    from harness.cell.trainable import setup_trainable

    cfg = parse_cell_config(
        {"model": {"name": "hf-vlm", "path": str(llava_dir), "freeze_vision": True}}
    )
    model, _ = build_model(cfg.model)
    setup_trainable(model, cfg)
    tower = model.base_vlm().model.vision_tower
    assert model.vision is tower
    assert not any(p.requires_grad for p in tower.parameters())
    assert all(p.requires_grad for p in model.base_decoder().parameters())
    assert not any(k.startswith("vision.") for k in model.state_dict())


def test_prefix_bidirectional_keeps_its_meaning_on_the_seed_layout(tmp_path):
    """[BOS] + image + text: hf-vlm's prefix block is BOS + image, tiny-vlm's prefix exactly."""
    from harness.cell.attention import prefix_ids_from_mask
    from harness.models.vlm_masks import block_ids, image_span

    model = build_hf_vlm(ModelConfig(name="hf-vlm", path=str(_save_tiny_llava(tmp_path, True))))
    pix = torch.stack([model.preprocess(Image.new("RGB", (40, 40)))] * 2)
    prompts = [model.prompt_ids("q"), model.prompt_ids("a longer question")]
    for left in (False, True):
        batch = model.collate(prompts, None, pix, left_pad=left)
        span = image_span(batch.input_ids, model.span_ids)
        ours = block_ids("prefix_bidirectional", span, batch.attention_mask, None)
        assert torch.equal(ours, prefix_ids_from_mask(batch.attention_mask, 1 + PATCHES))
        assert int((ours[0] == 0).sum()) == 1 + PATCHES
