"""`benchmark`'s generation speed, side by side in one run on the same model and prompts.

Run: ``.venv/bin/pytest tests/benchmarks/test_benchmark_speed_bench.py -m slow --benchmark-only -q -s``
(part of ``make bench``). A 3.2M-parameter Llama (random weights, the harness's character
tokenizer) completes 32 QA prompts of different lengths, greedily, 24 new tokens each, on the CPU
with one thread:

- ``one at a time``: ``generate_many(batch_size=1)`` (what ``benchmark`` did before batching);
- ``benchmark``: ``generate_many(batch_size=16)``, left-padded batches, stop checks per row;
- ``model.generate``: the same left-padded batches straight through transformers (the limit);
- ``lm-eval``: lm-evaluation-harness 0.4.13's ``hf`` model, ``generate_until`` over the same
  prompts (``<bos>`` written first, so the same token ids), ``batch_size=16``; its model load is
  not timed.

Then the result cache: the same CLI run of a second checkpoint on the same base, with the cache
warm from a first checkpoint's run and with ``--no_cache``; the difference of their evaluation
time is the base side's time saved. Wall-clock numbers on a shared machine vary; the ratios of
one run are what to compare.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

from harness.benchmark.batches import generate_many
from harness.benchmark.generation import GenerationSettings
from harness.benchmark.textlm import TextLM
from harness.models.prefix_lm import PROMPT_TEMPLATE

pytestmark = pytest.mark.slow

PROMPTS = 32
NEW_TOKENS = 24
BATCH = 16


def _model(d: Path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.models.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=256,
        intermediate_size=704,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(d)
    tok.save_pretrained(d)
    return LlamaForCausalLM.from_pretrained(d).eval(), tok


def _questions() -> list[str]:
    return [f"what is {i} plus {i * 37 % 101}" + " and more" * (i % 5) for i in range(PROMPTS)]


def _timed(fn, rounds: int = 2):
    """(best seconds of ``rounds``, the last result)."""
    best, out = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _plain_generate(lm: TextLM, prompts: list[list[int]]) -> list[list[int]]:
    """The same left-padded batches (longest first) through ``model.generate``, nothing else."""
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    out: list[list[int]] = [[] for _ in prompts]
    for lo in range(0, len(order), BATCH):
        rows = order[lo : lo + BATCH]
        width = max(len(prompts[i]) for i in rows)
        ids = torch.full((len(rows), width), lm.pad)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(rows):
            ids[r, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[r, width - len(prompts[i]) :] = 1
        with torch.no_grad():
            gen = lm.module.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
                pad_token_id=lm.pad,
                eos_token_id=lm.eos,
            )
        for r, i in enumerate(rows):
            out[i] = gen[r, width:].tolist()
    return out


def _lm_eval(d: Path, questions: list[str]):
    """lm-eval's HF backend (loaded, not timed) and a function running ``generate_until``."""
    os.environ |= {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(d), batch_size=BATCH, device="cpu", dtype="float32", max_length=256)
    kw = {"until": ["<eos>"], "max_gen_toks": NEW_TOKENS, "do_sample": False}
    requests = [
        Instance("generate_until", {}, ("<bos>" + PROMPT_TEMPLATE.format(question=q), kw), i)
        for i, q in enumerate(questions)
    ]
    return lambda: lm.generate_until(requests, disable_tqdm=True)


def test_bench_generation_throughput_side_by_side(benchmark, tmp_path):
    torch.set_num_threads(1)
    module, tok = _model(tmp_path / "model")
    lm = TextLM(module, tok, torch.device("cpu"))
    questions = _questions()
    prompts = [lm.encode(PROMPT_TEMPLATE.format(question=q)) for q in questions]
    settings = GenerationSettings(max_new_tokens=NEW_TOKENS)
    seeds = [0] * PROMPTS
    lm_eval_run = _lm_eval(tmp_path / "model", questions)

    def batched():
        return generate_many(lm, prompts, seeds, settings, BATCH)

    single_s, single = _timed(lambda: generate_many(lm, prompts, seeds, settings, 1), rounds=1)
    batched_s, got = _timed(batched)
    plain_s, plain = _timed(lambda: _plain_generate(lm, prompts))
    lm_eval_s, theirs = _timed(lm_eval_run)
    benchmark.pedantic(batched, rounds=1, iterations=1)
    assert got == single  # the same completions, batched or not
    assert [c.ids for c in got] == [p[: p.index(lm.eos)] if lm.eos in p else p for p in plain]
    assert [c.text for c in got] == theirs  # and the same as lm-eval's
    tokens = sum(len(c.ids) for c in got)
    rows = {
        "one at a time": single_s,
        f"benchmark (batch {BATCH})": batched_s,
        f"model.generate (batch {BATCH})": plain_s,
        f"lm-eval hf (batch {BATCH})": lm_eval_s,
    }
    print(f"\n{PROMPTS} prompts x {NEW_TOKENS} new tokens, {tokens} generated, CPU, 1 thread")
    for name, s in rows.items():
        print(f"  {name:<28} {s:7.2f} s  {tokens / s:8.1f} tokens/s")
    ratios = {
        "vs_one_at_a_time": single_s / batched_s,
        "vs_model_generate": plain_s / batched_s,
        "vs_lm_eval": lm_eval_s / batched_s,
    }
    print("  speed of benchmark: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    benchmark.extra_info.update({k: round(v, 3) for k, v in rows.items()} | ratios)


def _adapter(base: Path, out: Path, seed: int) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM.from_pretrained(base)
    lora = LoraConfig(r=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(out)
    cfg = out / "adapter_config.json"
    cfg.write_text(
        json.dumps({**json.loads(cfg.read_text()), "base_model_name_or_path": str(base)})
    )
    return out


def test_bench_cache_saves_the_base_side(benchmark, tmp_path, monkeypatch):
    from harness.benchmark.cli import main

    torch.set_num_threads(1)
    monkeypatch.setenv("HARNESS_BENCHMARK_CACHE", str(tmp_path / "cache.sqlite"))
    _model(tmp_path / "base")
    first = _adapter(tmp_path / "base", tmp_path / "first", 1)
    second = _adapter(tmp_path / "base", tmp_path / "second", 2)
    data = tmp_path / "qa.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": q, "answer": "x"}) + "\n"
            for i, q in enumerate(_questions())
        )
    )
    common = ["--data", str(data), "--max_new_tokens", str(NEW_TOKENS), "--quiet"]

    def run(*args: str) -> dict:
        out = tmp_path / "r.md"
        assert main([*args, *common, "--output", str(out)]) == 0
        return json.loads(out.with_suffix(".json").read_text())

    run("--trained_model", str(first))  # fills the cache with the base's side
    cold = run("--trained_model", str(second), "--no_cache")
    warm = benchmark.pedantic(lambda: run("--trained_model", str(second)), rounds=1, iterations=1)
    assert warm["execution"]["cache"]["base"]["misses"] == 0
    assert warm["samples"] == cold["samples"]
    saved = cold["timings"]["evaluation_s"] - warm["timings"]["evaluation_s"]
    print(
        f"\nsecond checkpoint on the same base (3.2M Llama + PEFT), {PROMPTS} QA samples x "
        f"{NEW_TOKENS} new tokens: evaluation {cold['timings']['evaluation_s']:.2f} s without "
        f"the cache, {warm['timings']['evaluation_s']:.2f} s with it (saved: {saved:.2f} s; "
        "the model hashes are inside the cached run's time)"
    )
    benchmark.extra_info.update(
        {
            "evaluation_no_cache_s": cold["timings"]["evaluation_s"],
            "evaluation_cached_s": warm["timings"]["evaluation_s"],
            "base_side_saved_s": saved,
        }
    )
