"""Every VLM family on its tiny random config: logits, masks, batching, training maths."""

from __future__ import annotations

import copy

import pytest
import torch
from PIL import Image

from harness.cell.attention import MaskCheckError
from harness.cell.train import make_optimizer, train_step
from harness.contracts.config import TrainConfig
from harness.models.prefix_lm import answer_loss
from harness.models.vlm_masks import BIDIRECTIONAL_MODES, VLM_MODES, build_mask, check_vlm_mask
from tests.models.helpers import load

WIDE = Image.new("RGB", (96, 32), (30, 160, 220))
TALL = Image.new("RGB", (40, 80), (220, 60, 30))
SQUARE = Image.new("RGB", (64, 64), (90, 90, 90))


def _own_inputs(model, image: Image.Image) -> dict:
    out = dict(
        model.processor(images=[image], text=[model.prompt_text("Read it")], return_tensors="pt")
    )
    out.pop("labels", None)
    return out


def _batch(model, images, answers=("12", "345")):
    enc = [model.encode_sample("Read it", im) for im in images]
    return model.collate(
        [e[0] for e in enc],
        [model.answer_ids(a) for a in answers[: len(images)]],
        [e[1] for e in enc],
    )


def test_native_forward_equals_the_models_own_training_forward(family_dir):
    model = load(family_dir)
    model.set_attention("native", "sdpa")
    batch = _batch(model, [WIDE, TALL])
    with torch.no_grad():
        ours = model(batch).logits
        model.base_vlm().train()  # the model's own training-mode forward (dropout 0)
        for i, image in enumerate((WIDE, TALL)):
            own = model.base_vlm()(**_own_inputs(model, image)).logits[0]
            torch.testing.assert_close(ours[i, : own.shape[0]], own, atol=1e-5, rtol=1e-4)


def test_causal_forward_equals_the_models_own_where_its_mask_is_causal(family_dir):
    model = load(family_dir)
    batch = _batch(model, [WIDE, TALL])
    with torch.no_grad():
        ours = model(batch).logits
        own = model.base_vlm()(**_own_inputs(model, TALL)).logits[0]
    diff = float((ours[1, : own.shape[0]] - own).abs().max())
    if model.family.native_mask == "causal":
        assert diff < 1e-5
    else:  # PaliGemma's own mask is bidirectional over image + prompt: causal must differ
        assert diff > 1e-4


@pytest.mark.parametrize("impl", ["sdpa", "eager_dense"])
@pytest.mark.parametrize("mode", VLM_MODES)
def test_mask_self_check_proves_who_sees_whom(family_dir, mode, impl):
    model = load(family_dir)
    model.set_attention(mode, impl)
    result = model.check_attention(mode, impl)
    bidirectional = mode in BIDIRECTIONAL_MODES or (
        mode == "native" and model.family.native_mask != "causal"
    )
    assert result.image_sees_later_image == bidirectional
    assert not result.text_sees_future and result.probes > 0 and result.min_change > 1e-4


def test_self_check_catches_a_mask_of_another_mode(tiny_dirs):
    model = load(tiny_dirs["llava"])
    batch = _batch(model, [WIDE, TALL])
    text_config = model.base_vlm().config.get_text_config()
    from harness.models.vlm_masks import block_ids, image_span

    span = image_span(batch.input_ids, model.span_ids)
    causal = block_ids("causal", span, batch.attention_mask, None)
    wrong = block_ids("image_bidirectional", span, batch.attention_mask, None)
    positions = model.family.position_ids(None, batch.input_ids, batch.attention_mask, {})
    with pytest.raises(MaskCheckError, match="saw it but must not"):
        check_vlm_mask(
            model.base_decoder(),
            lambda e, m, b: build_mask(text_config, e, m, wrong),
            batch.attention_mask,
            causal,
            span,
            positions,
            [None, None],
            "causal",
            "sdpa",
        )


def test_two_aspect_ratios_in_one_batch_give_each_samples_own_loss(family_dir):
    model = load(family_dir)
    model.set_attention("image_bidirectional", "sdpa")
    images, answers = [WIDE, TALL, SQUARE], ("12", "345", "6")
    together = _batch(model, images, answers)
    with torch.no_grad():
        logits = model(together).logits
        for i, image in enumerate(images):
            alone = _batch(model, [image], answers=(answers[i],))
            s_alone, n_alone, _ = answer_loss(model(alone).logits, alone.labels)
            s_both, n_both, _ = answer_loss(logits[i : i + 1], together.labels[i : i + 1])
            assert n_alone == n_both
            torch.testing.assert_close(s_both, s_alone, atol=1e-4, rtol=1e-5)


def _train_cfg(**kw) -> TrainConfig:
    return TrainConfig(lr=3e-3, warmup_steps=1, max_steps=40, grad_clip=0.0, weight_decay=0.0, **kw)


def test_loss_on_a_memorisable_set_falls_by_half(family_dir):
    torch.manual_seed(0)
    model = load(family_dir)
    model.set_attention("prefix_bidirectional", "sdpa")
    images = [WIDE, TALL, SQUARE, Image.new("RGB", (50, 30))]
    enc = [model.encode_sample("Read it", im) for im in images]
    answers = [model.answer_ids(a) for a in ("12", "345", "6", "78")]
    batch = model.collate([e[0] for e in enc], answers, [e[1] for e in enc])
    cfg = _train_cfg()
    opt = make_optimizer(model, cfg)
    model.train()
    losses = [train_step(model, opt, [batch], cfg).loss for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0], losses


def test_grad_accum_2_x_2_equals_micro_batch_4(family_dir):
    model = load(family_dir)
    images = [WIDE, TALL, SQUARE, Image.new("RGB", (50, 30))]
    enc = [model.encode_sample("Read it", im) for im in images]
    answers = [model.answer_ids(a) for a in ("12", "345", "6", "78")]

    def batch(idx):
        return model.collate(
            [enc[i][0] for i in idx], [answers[i] for i in idx], [enc[i][1] for i in idx]
        )

    twin = copy.deepcopy(model)
    cfg = _train_cfg()

    def sgd(m):  # parameters move by exactly -gradient: compares the accumulated gradients
        return torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1.0)

    one = train_step(model, sgd(model), [batch([0, 1, 2, 3])], cfg)
    two = train_step(twin, sgd(twin), [batch([0, 1]), batch([2, 3])], cfg)
    assert one.answer_tokens == two.answer_tokens
    assert abs(one.loss - two.loss) < 1e-5
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("mode", ["causal", "image_bidirectional"])
def test_left_padded_generation_equals_each_sample_alone(family_dir, mode):
    model = load(family_dir)
    model.set_attention(mode, "sdpa")
    model.eval()
    enc = [model.encode_sample(q, im) for q, im in (("Read it", WIDE), ("What is it?", TALL))]
    batch = model.collate([e[0] for e in enc], None, [e[1] for e in enc], left_pad=True)
    together = model.generate_greedy(batch, 5)
    alone = [model.generate_greedy(model.collate([p], None, [x]), 5)[0] for p, x in enc]
    assert together == alone and all(len(r) <= 5 for r in together)
    first = model(model.collate([enc[0][0]], None, [enc[0][1]])).logits[0, -1].argmax()
    assert not alone[0] or alone[0][0] == int(first)


def test_lora_targets_only_the_language_model(family_dir):
    from peft import LoraConfig, get_peft_model

    model = load(family_dir)
    targets = model.lora_target_modules(["q_proj", "v_proj"])
    wrapped = get_peft_model(model.decoder, LoraConfig(r=2, target_modules=targets))
    adapted = [n for n, _ in wrapped.named_modules() if n.endswith(".lora_A")]
    assert adapted and all(model.family.language_model + "." in n for n in adapted)
