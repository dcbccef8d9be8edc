"""``benchmark`` agrees with lm-evaluation-harness (0.4.13) on the same tiny HF causal LM (made
and saved here) and the same local documents, lm-eval run offline in its own process on task
YAMLs over local JSONL files: per-document total log-likelihood of ``loglikelihood_rolling``
within 1e-4 relative, word and byte perplexity and bits per byte equal, and greedy exact-match QA
equal to a ``generate_until`` task over the same prompts.

One documented difference is pinned: lm-eval encodes a ``generate_until`` context as the
tokenizer's ``encode`` does (this tokenizer adds no BOS), ``benchmark`` always puts BOS first;
with ``<bos>`` written in the task's prompt the two agree exactly, without it lm-eval's
completions are those of the prompt without BOS."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.benchmark.cli import main
from harness.benchmark.generation import GenerationSettings
from harness.benchmark.perplexity import rolling_windows
from harness.benchmark.textlm import TextLM
from harness.models.prefix_lm import PROMPT_TEMPLATE
from tests.benchmark.builders import REPO, char_tokenizer, train_tiny

MAX_LENGTH = 64
TEXTS = [
    "the cat sat on the mat.  it was red, and the dog ran far away (very far).",
    "1+1=2\n2+2=4\n\nthe end",
    " leading and trailing spaces ",
    "a long one: " + " ".join(f"word{i} is {i * 7 % 10}" for i in range(30)),
    "q",
]
QA = [(f"{i}+{i}", str(2 * i)) for i in range(10)]  # 0..5 learned by train_tiny, 6..9 not

ROLLING_YAML = """task: bench_rolling
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
"""
QA_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{bos}\\n\\nQuestion: {{{{question}}}}\\n\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["<eos>"]
  max_gen_toks: 20
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    regexes_to_ignore: ["^\\\\s+", "\\\\s+$"]
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory, base_dir):
    d = tmp_path_factory.mktemp("lmeval")
    model = train_tiny(base_dir, d / "model")
    char_tokenizer().save_pretrained(model)
    texts = d / "texts.jsonl"
    texts.write_text(
        "".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS))
    )
    qa = d / "qa.jsonl"
    qa.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": q, "answer": a}) + "\n"
            for i, (q, a) in enumerate(QA)
        )
    )
    tasks = d / "tasks"
    tasks.mkdir()
    (tasks / "rolling.yaml").write_text(ROLLING_YAML.format(data=texts))
    (tasks / "qa_bos.yaml").write_text(QA_YAML.format(name="bench_qa_bos", data=qa, bos="<bos>"))
    (tasks / "qa_plain.yaml").write_text(QA_YAML.format(name="bench_qa_plain", data=qa, bos=""))
    out = d / "lm_eval.json"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(d / "datasets-cache"),
        "HF_HOME": str(d / "hf-home"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }
    run = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("lm_eval_run.py")),
            str(model),
            str(tasks),
            str(out),
            str(MAX_LENGTH),
            "bench_rolling",
            "bench_qa_bos",
            "bench_qa_plain",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return {
        "model": model,
        "texts": texts,
        "qa": qa,
        "lm_eval": json.loads(out.read_text()),
        "dir": d,
    }


def _bench(setup, *args: str) -> dict:
    out = setup["dir"] / "bench" / "r.md"
    rc = main(
        [
            "--trained_model",
            str(setup["model"]),
            "--no_compare",
            "--quiet",
            *args,
            "--output",
            str(out),
        ]
    )
    assert rc == 0
    return json.loads(out.with_suffix(".json").read_text())


def _float(x) -> float:
    while isinstance(x, list):
        x = x[0]
    return float(x)


@pytest.mark.slow  # lm-eval's own process: ~1 min on one busy core
def test_rolling_loglikelihood_and_word_byte_perplexity_equal(setup):
    res = _bench(setup, "--data", str(setup["texts"]), "--max_length", str(MAX_LENGTH))
    ours = {s["id"]: s["trained"] for s in res["samples"]}
    theirs = setup["lm_eval"]["samples"]["bench_rolling"]
    assert len(theirs) == len(TEXTS)
    assert max(r["windows"] for r in ours.values()) > 2  # the long text needs several windows
    for i, s in enumerate(theirs):
        assert s["doc"]["text"] == TEXTS[i]
        ll = _float(s["filtered"])
        assert -ours[f"t{i}"]["nll"] == pytest.approx(ll, rel=1e-4)
    m, r = res["metrics"]["trained"], setup["lm_eval"]["results"]["bench_rolling"]
    assert m["word_perplexity"] == pytest.approx(r["word_perplexity,none"], rel=1e-4)
    assert m["byte_perplexity"] == pytest.approx(r["byte_perplexity,none"], rel=1e-4)
    assert m["bits_per_byte"] == pytest.approx(r["bits_per_byte,none"], rel=1e-4)
    assert m["bits_per_byte"] == pytest.approx(math.log2(m["byte_perplexity"]))


@pytest.mark.slow  # lm-eval's own process: ~1 min on one busy core
def test_greedy_exact_match_equals_a_generate_until_task(setup):
    res = _bench(setup, "--data", str(setup["qa"]), "--max_new_tokens", "20")
    ours = [s["trained"]["prediction"] for s in res["samples"]]
    theirs = setup["lm_eval"]["samples"]["bench_qa_bos"]
    assert [_str(s["filtered"]).strip() for s in theirs] == ours
    em = setup["lm_eval"]["results"]["bench_qa_bos"]["exact_match,none"]
    assert res["metrics"]["trained"]["exact_match"] == pytest.approx(em)
    assert 0 < em < 1  # some right, some wrong: the scores are not trivially equal


def _str(x) -> str:
    while isinstance(x, list):
        x = x[0]
    return str(x)


@pytest.mark.slow  # lm-eval's own process: ~1 min on one busy core
def test_pinned_difference_lm_eval_puts_no_bos_before_a_generation_prompt(setup):
    from transformers import AutoModelForCausalLM

    lm = TextLM(
        AutoModelForCausalLM.from_pretrained(setup["model"]).eval(),
        char_tokenizer(),
        torch.device("cpu"),
    )
    settings = GenerationSettings(max_new_tokens=20)
    plain = [_str(s["filtered"]).strip() for s in setup["lm_eval"]["samples"]["bench_qa_plain"]]
    without_bos = [
        lm.generate(
            lm.encode(PROMPT_TEMPLATE.format(question=q), bos=False), settings, 0
        ).text.strip()
        for q, _ in QA
    ]
    with_bos = [
        lm.generate(lm.encode(PROMPT_TEMPLATE.format(question=q)), settings, 0).text.strip()
        for q, _ in QA
    ]
    assert plain == without_bos  # lm-eval's prompt is the one without BOS
    assert with_bos != without_bos  # and that changes the completions of this model


def test_windows_are_lm_evals_for_every_stride():
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    tokens = list(range(10, 47))
    for max_length in (1, 4, 8, 37, 50):
        for stride in sorted(
            {s for s in (1, 2, max_length // 2, max_length) if 1 <= s <= max_length}
        ):
            theirs = [
                make_disjoint_window(w)
                for w in get_rolling_token_windows(tokens, 0, max_length, max_length - stride + 1)
            ]
            expected = [((ctx + cont)[-(max_length + 1) :][:-1], cont) for ctx, cont in theirs]
            ours = rolling_windows(tokens, 0, max_length, stride)
            assert ours == expected, (max_length, stride)
            assert [t for _, cont in ours for t in cont] == tokens  # every token once
