"""Batched generation equals one-at-a-time generation, per sample, for every loader format:
greedy completions (EOS and stop sequences applied per row, prompts of different lengths
left-padded), DyLoRA-MoE routed on each prompt alone, seeded sampling whatever the batch size,
and ``--batch_size auto`` halving on out-of-memory."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from harness.benchmark.batches import generate_many, score_many
from harness.benchmark.generation import GenerationSettings
from harness.benchmark.sides import EvalModel
from harness.benchmark.textlm import TextLM
from harness.models.prefix_lm import PROMPT_TEMPLATE
from loaders import load_checkpoint
from tests.benchmark.builders import (
    SEED000_ALPHA,
    char_tokenizer,
    dylora_trained,
    train_tiny,
    write_dylora_single,
    write_peft_adapter,
    write_seed000_file,
    write_trainable_rows,
)

CPU = torch.device("cpu")
QUESTIONS = ["1+1", "23+23", "345+6", "7", "89+10+11", "0", "4+4", "5+55+5"]
GREEDY = GenerationSettings(max_new_tokens=8)
STOPPED = GenerationSettings(max_new_tokens=10, stop=("\n", "1"))
SAMPLED = GenerationSettings(max_new_tokens=8, temperature=3.0, top_p=0.9, seed=5)


@pytest.fixture(scope="module")
def formats(tmp_path_factory, base_dir) -> dict[str, TextLM]:
    """A loaded model of each text format, from files written as each format writes them."""
    d = tmp_path_factory.mktemp("formats")
    write_peft_adapter(base_dir, d / "adapter")
    write_dylora_single(d / "dylora", dylora_trained(base_dir), base_dir)
    sources = {
        "hf-full": (train_tiny(base_dir, d / "full", steps=60), None, {}),
        "peft-adapter": (d / "adapter", None, {}),
        "lora-file": (
            write_seed000_file(d / "lora.safetensors", base_dir),
            base_dir,
            {"lora_alpha": SEED000_ALPHA},
        ),
        "dylora-moe": (d / "dylora", None, {}),
        "trainable-rows": (write_trainable_rows(d / "rows"), base_dir, {}),
    }
    out = {}
    for name, (path, base, opts) in sources.items():
        loaded = load_checkpoint(path, base_model=base, device=CPU, probe=False, **opts)
        assert loaded.format == name
        out[name] = TextLM(loaded.model.eval(), char_tokenizer(), CPU)
    _split_router(out["dylora-moe"])
    return out


@torch.no_grad()
def _split_router(lm: TextLM) -> None:
    """Set the router's gate so that the test prompts go to both experts (about half each):
    its two logits differ by the pooled hidden state's projection on one prompt's deviation
    from the mean, centred at the median."""
    module = lm.module
    pooled = []
    for p in _prompts(lm):
        t = torch.tensor([p])
        with module.foundation_model.disable_adapter():
            h = module.foundation_model(input_ids=t, output_hidden_states=True).hidden_states[-1]
        pooled.append(h[0].mean(0))
    stack = torch.stack(pooled)
    v = stack[0] - stack.mean(0)
    middle = (stack @ v).median()
    gate = module.router.gate
    gate.weight.copy_(torch.stack([v, -v]) * 100)
    gate.bias.copy_(torch.stack([-middle, middle]) * 100 + torch.tensor([1e-3, 0.0]))


def _prompts(lm: TextLM) -> list[list[int]]:
    return [lm.encode(PROMPT_TEMPLATE.format(question=q)) for q in QUESTIONS]


def _one_at_a_time(lm: TextLM, prompts, settings, seeds):
    return [lm.generate(p, settings, s) for p, s in zip(prompts, seeds, strict=True)]


@pytest.mark.parametrize(
    "name", ["hf-full", "peft-adapter", "lora-file", "dylora-moe", "trainable-rows"]
)
@pytest.mark.parametrize("settings", [GREEDY, STOPPED, SAMPLED], ids=["greedy", "stop", "sample"])
def test_batched_equals_one_at_a_time_for_every_format(formats, name, settings):
    lm = formats[name]
    prompts = _prompts(lm)
    assert len({len(p) for p in prompts}) > 3  # padded batches
    texts = [c.text for c in _one_at_a_time(lm, prompts, GREEDY, [0] * 8)]
    if settings is STOPPED and name == "trainable-rows":
        # its greedy tokens are the new (multimodal) rows, which decode to no text
        assert texts == [""] * 8
    elif settings is STOPPED:  # a stop sequence these completions really reach, mid-way
        settings = replace(STOPPED, stop=(next(t for t in texts if len(t) > 2)[2],))
    seeds = [settings.item_seed(i, 0) for i in range(len(prompts))]
    alone = _one_at_a_time(lm, prompts, settings, seeds)
    for size in (3, 8, "auto"):
        assert generate_many(lm, prompts, seeds, settings, size) == alone, size
    if settings.stop and name != "trainable-rows":  # the stop sequence was really applied
        assert "stop sequence" in {c.stopped for c in alone}


@pytest.mark.parametrize(
    "name", ["hf-full", "peft-adapter", "lora-file", "dylora-moe", "trainable-rows"]
)
def test_batched_scoring_equals_one_at_a_time_for_every_format(formats, name):
    lm = formats[name]
    pairs = [([*p, 5, 6, 7], [6, 7, lm.eos]) for p in _prompts(lm)]  # right-padded batches
    alone = score_many(lm, pairs, 1)
    for size in (3, "auto"):
        together = score_many(lm, pairs, size)
        assert [(n, ok) for _, n, ok in together] == [(n, ok) for _, n, ok in alone]
        assert [x for x, _, _ in together] == pytest.approx([x for x, _, _ in alone], rel=1e-5)


def test_rows_ending_at_different_steps_in_one_batch(formats):
    lm = formats["hf-full"]  # trained a little on the answers: some rows end at EOS early
    prompts = _prompts(lm)
    got = generate_many(lm, prompts, [0] * 8, GREEDY, 8)
    assert got == _one_at_a_time(lm, prompts, GREEDY, [0] * 8)
    assert {c.stopped for c in got} == {"eos", "max_new_tokens"}
    assert len({len(c.ids) for c in got}) > 1


def test_dylora_moe_routes_each_prompt_on_its_own_inside_a_batch(formats):
    lm = formats["dylora-moe"]
    module = lm.module
    prompts = _prompts(lm)
    experts = []
    for p in prompts:
        t = torch.tensor([p])
        experts.append(int(module.gate_logits(t, torch.ones_like(t))[0].argmax()))
    assert len(set(experts)) == 2, experts  # both experts are used by these prompts
    batched = generate_many(lm, prompts, [0] * len(prompts), GREEDY, len(prompts))
    for p, c in zip(prompts, batched, strict=True):  # the model's own generate, one prompt
        t = torch.tensor([p])
        own = module.generate(
            input_ids=t,
            attention_mask=torch.ones_like(t),
            max_new_tokens=GREEDY.max_new_tokens,
            do_sample=False,
            pad_token_id=lm.pad,
            eos_token_id=lm.eos,
        )[0, len(p) :].tolist()
        assert c.ids == (own[: own.index(lm.eos)] if lm.eos in own else own)


def test_sampling_is_reproducible_per_sample_whatever_the_batch(formats):
    lm = formats["peft-adapter"]
    prompts = _prompts(lm)
    seeds = [SAMPLED.item_seed(i, 0) for i in range(len(prompts))]
    full = generate_many(lm, prompts, seeds, SAMPLED, 8)
    assert len({tuple(c.ids) for c in full}) > 1
    # the same sample alone, or beside other prompts, draws the same completion
    assert generate_many(lm, prompts[2:5], seeds[2:5], SAMPLED, 2) == full[2:5]
    other = generate_many(lm, prompts, [s + 1 for s in seeds], SAMPLED, 8)
    assert other != full  # the seed is used


class OOMAbove(TextLM):
    """A real TextLM whose batches above ``limit`` prompts fail as a full GPU does."""

    def __init__(self, lm: TextLM, limit: int) -> None:
        super().__init__(lm.module, lm.tokenizer, lm.device)
        self.limit, self.sizes = limit, []

    def generate_batch(self, prompts, settings, seeds):
        self.sizes.append(len(prompts))
        if len(prompts) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().generate_batch(prompts, settings, seeds)


def test_auto_batch_size_halves_on_out_of_memory(formats):
    lm = formats["hf-full"]
    prompts = _prompts(lm)
    alone = _one_at_a_time(lm, prompts, GREEDY, [0] * len(prompts))
    small = OOMAbove(lm, 3)
    assert generate_many(small, prompts, [0] * len(prompts), GREEDY, "auto") == alone
    assert small.sizes == [8, 4, 2, 2, 2, 2]
    with pytest.raises(torch.OutOfMemoryError):  # a fixed size is what the user asked for
        generate_many(OOMAbove(lm, 3), prompts, [0] * len(prompts), GREEDY, 4)


def test_harness_vision_qa_is_the_same_whatever_the_batch(tmp_path):
    from harness.benchmark.qa import PREFIX_PATH, evaluate_qa
    from harness.contracts.config import parse_cell_config
    from harness.data.captcha import generate_split
    from harness.data.jsonl import read_records
    from harness.models import build_model
    from tests.cell_helpers import tiny_cell

    records = read_records(generate_split(tmp_path / "cap", "test", 5))
    cfg = parse_cell_config(tiny_cell(tmp_path / "c", model__num_layers=2))
    torch.manual_seed(cfg.seed)
    module, _ = build_model(cfg.model)
    model = EvalModel("trained", module.eval(), module.tokenizer, CPU)
    runs = [
        evaluate_qa(model, records, GREEDY, PREFIX_PATH, size, lambda n: None)
        for size in (1, 2, "auto")
    ]
    assert runs[0].samples == runs[1].samples == runs[2].samples


def test_perplexity_windows_and_labels_in_the_report(tmp_path, base_dir, data_dir):
    import json

    from harness.benchmark.cli import main

    out = tmp_path / "r.md"
    args = ["--trained_model", str(base_dir), "--no_compare", "--quiet", "--output", str(out)]
    assert main([*args, "--data", str(data_dir / "text.txt"), "--max_length", "4"]) == 0
    disjoint = json.loads(out.with_suffix(".json").read_text())
    m = disjoint["metrics"]["trained"]
    assert (m["max_length"], m["stride"]) == (4, 4) and m["windows"] > m["n"]
    assert m["tokens"] == sum(s["trained"]["tokens"] for s in disjoint["samples"])
    report = out.read_text()
    for label in ("token perplexity (this tokenizer)", "word perplexity (lm-eval", "bits per byte"):
        assert label in report
    assert (
        main([*args, "--data", str(data_dir / "text.txt"), "--max_length", "4", "--stride", "1"])
        == 0
    )
    rolling = json.loads(out.with_suffix(".json").read_text())["metrics"]["trained"]
    assert rolling["tokens"] == m["tokens"] and rolling["windows"] > m["windows"]
    assert rolling["nll"] != pytest.approx(m["nll"])  # more context per token
