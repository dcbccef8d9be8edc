"""The scores mean what they say: a tiny model fine-tuned in the test on the QA answers and the
code solutions really wins against its base, on every task, with the paired test reporting it."""

from __future__ import annotations

import json

import pytest
import torch

from harness.benchmark.cli import main
from harness.benchmark.settings import GenerationSettings
from harness.benchmark.textlm import TextLM
from harness.models.prefix_lm import PROMPT_TEMPLATE
from tests.benchmark.builders import char_tokenizer, qa_pairs, train_tiny


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, base_dir):
    return train_tiny(base_dir, tmp_path_factory.mktemp("trained") / "model")


def _bench(tmp_path, *args: str) -> tuple[dict, str]:
    out = tmp_path / "r.md"
    assert main([*args, "--output", str(out), "--quiet"]) == 0
    return json.loads(out.with_suffix(".json").read_text()), out.read_text()


def test_qa_learned_answers_are_exact_matches(tmp_path, trained_dir, base_dir, data_dir):
    res, report = _bench(
        tmp_path,
        "--trained_model",
        str(trained_dir),
        "--base_model",
        str(base_dir),
        "--data",
        str(data_dir / "qa.jsonl"),
    )
    trained, base = res["metrics"]["trained"], res["metrics"]["base"]
    assert (trained["exact_match_k"], base["exact_match_k"]) == (6, 0)
    assert [s["trained"]["prediction"] for s in res["samples"]] == [a for _, a in qa_pairs()]
    cmp = res["comparison"]
    assert (cmp["trained_only"], cmp["base_only"], cmp["verdict"]) == (6, 0, "improvement")
    assert cmp["p_value"] == pytest.approx(2 / 2**6)  # exact McNemar, 6 vs 0 discordant
    assert trained["token_accuracy"] > 0.9 > base["token_accuracy"]
    assert "The trained model is better than its base" in report
    assert "6 of 6 samples differ: 6 only the trained model gets right" in report


def test_perplexity_drops_on_what_was_learned(tmp_path, trained_dir, base_dir):
    data = tmp_path / "texts.jsonl"
    lines = [
        {"id": f"t{i}", "text": PROMPT_TEMPLATE.format(question=q) + a}
        for i, (q, a) in enumerate(qa_pairs())
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in lines))
    res, _ = _bench(
        tmp_path,
        "--trained_model",
        str(trained_dir),
        "--base_model",
        str(base_dir),
        "--data",
        str(data),
    )
    assert res["task"] == "perplexity"
    assert res["metrics"]["trained"]["perplexity"] < 2 < res["metrics"]["base"]["perplexity"]
    cmp = res["comparison"]
    assert cmp["trained_better"] == 6 and cmp["diff"] < 0 and cmp["verdict"] == "improvement"


def test_greedy_generation_is_the_same_with_and_without_the_kv_cache(trained_dir):
    from transformers import LlamaForCausalLM

    lm = TextLM(
        LlamaForCausalLM.from_pretrained(trained_dir).eval(), char_tokenizer(), torch.device("cpu")
    )
    settings = GenerationSettings(max_new_tokens=8)
    for q, a in qa_pairs(3):
        prompt = lm.encode(PROMPT_TEMPLATE.format(question=q))
        cached = lm._generate_hf(lm.module, [prompt], settings, [0])[0]
        assert cached[:2] == lm._generate_loop(prompt, settings, 0)[:2]
        assert lm.generate(prompt, settings, 0).text == a


def test_sampling_is_seeded_per_item(trained_dir):
    from transformers import LlamaForCausalLM

    lm = TextLM(
        LlamaForCausalLM.from_pretrained(trained_dir).eval(), char_tokenizer(), torch.device("cpu")
    )
    settings = GenerationSettings(max_new_tokens=6, temperature=5.0, top_p=1.0, seed=3)
    prompt = lm.encode("Q")
    first = [lm.generate(prompt, settings, settings.item_seed(0, j)).ids for j in range(4)]
    again = [lm.generate(prompt, settings, settings.item_seed(0, j)).ids for j in range(4)]
    assert first == again and len({tuple(x) for x in first}) > 1


def test_humaneval_layout_scored_by_running_the_tests(tmp_path, trained_dir, base_dir, data_dir):
    res, report = _bench(
        tmp_path,
        "--trained_model",
        str(trained_dir),
        "--base_model",
        str(base_dir),
        "--data",
        str(data_dir / "code.jsonl"),
        "--max_new_tokens",
        "24",
    )
    assert res["task"] == "humaneval" and res["generation"]["stop"]
    trained, base = res["metrics"]["trained"], res["metrics"]["base"]
    assert (trained["pass@1"], base["pass@1"]) == (1.0, 0.0)
    rows = {s["id"]: s for s in res["samples"]}
    assert rows["t/1"]["trained"]["completions"] == ["    return x + 1\n"]
    assert rows["t/1"]["trained"]["statuses"] == ["passed"]
    assert res["comparison"]["test"] == "McNemar (exact)" and res["comparison"]["trained_only"] == 2
    assert "pass@1" in report


def test_humaneval_pass_at_k_with_sampling(tmp_path, trained_dir, base_dir, data_dir):
    res, _ = _bench(
        tmp_path,
        "--trained_model",
        str(trained_dir),
        "--base_model",
        str(base_dir),
        "--data",
        str(data_dir / "code.jsonl"),
        "--max_new_tokens",
        "24",
        "--samples_per_task",
        "2",
        "--temperature",
        "0.2",
        "--top_p",
        "0.95",
        "--seed",
        "7",
    )
    gen = res["generation"]
    assert (gen["temperature"], gen["top_p"], gen["seed"], gen["samples_per_task"]) == (
        0.2,
        0.95,
        7,
        2,
    )
    t = res["metrics"]["trained"]
    assert {"pass@1"} <= set(t) and t["samples"] == 4
    assert res["comparison"]["test"].startswith("sign test")
    assert all(len(s["trained"]["completions"]) == 2 for s in res["samples"])
