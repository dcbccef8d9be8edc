"""Cell figures, measured side by side (no thresholds on time: machines are noisy).

- Training-step throughput of the harness (``train_step`` through PrefixLM) vs a bare hand-written
  PyTorch loop on the same model and batch: ``make bench`` prints both; the ratio is in
  ``extra_info``.
- tiny-vlm on synthetic captchas: exact match on 500 held-out images after a fixed budget of
  1,500 steps (the default ``train.max_steps``), asserted >= 85%; the training time is reported,
  never asserted (slow: about four minutes including data generation and evaluation).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from harness.config import parse_cell_config
from harness.encoding import EncodedSet, load_splits
from harness.models import build_model
from harness.store_files import read_summary
from harness.train import make_optimizer, train_step
from tests.cell_helpers import write_yaml

REPO = Path(__file__).resolve().parents[2]
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(2)
    cache = tmp_path_factory.mktemp("captcha")
    cfg = parse_cell_config(
        {"data": {"cache_dir": str(cache), "train_count": 256, "val_count": 8, "test_count": 8}}
    )
    torch.manual_seed(0)
    model, _ = build_model(cfg.model)
    model.set_attention("causal", "sdpa")
    data = EncodedSet(load_splits(cfg.data, 0).train, model)
    batch = data.batch(list(range(cfg.train.micro_batch)))
    return cfg, model, batch


def _bare_step(model, opt, batch) -> None:
    """What one would write by hand: embeddings with image features, decoder, CE, AdamW."""
    dec = model.decoder
    emb = dec.get_input_embeddings()(batch.input_ids.clamp_max(dec.config.vocab_size - 1))
    feats = model.projector(model.vision(batch.pixel_values))
    is_img = (batch.input_ids == model.image_token_id).unsqueeze(-1)
    emb = emb.masked_scatter(is_img, feats)
    logits = dec(inputs_embeds=emb, attention_mask=batch.attention_mask).logits
    loss = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        batch.labels[:, 1:].reshape(-1),
        ignore_index=-100,
    )
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("impl", ["bare", "harness"])
def test_train_step_throughput(benchmark, setup, impl):
    cfg, model, batch = setup
    opt = make_optimizer(model, cfg.train)
    if impl == "bare":
        step = lambda: _bare_step(model, opt, batch)  # noqa: E731
    else:
        step = lambda: train_step(model, opt, [batch], cfg.train)  # noqa: E731
    for _ in range(3):
        step()
    benchmark.pedantic(step, rounds=15, iterations=1)
    RESULTS[impl] = benchmark.stats.stats.median
    tokens = batch.num_tokens
    benchmark.extra_info["tokens_per_s"] = tokens / benchmark.stats.stats.median
    if "bare" in RESULTS and "harness" in RESULTS:
        ratio = RESULTS["bare"] / RESULTS["harness"]
        benchmark.extra_info["throughput_vs_bare"] = ratio
        print(
            f"\nharness throughput / bare loop throughput = {ratio:.3f}x (median step "
            f"{RESULTS['harness'] * 1e3:.1f} ms vs {RESULTS['bare'] * 1e3:.1f} ms)"
        )


LEARNING_STEPS = 1500
"""The budget of the learning benchmark (steps, never seconds: the score must not depend on the
machine's speed or load)."""


@pytest.mark.slow
def test_tiny_vlm_learns_captchas(benchmark, tmp_path):
    """The embedded default's headline figure, through the real cell CLI: >= 85% exact match on
    500 held-out captchas after 1,500 steps of 16 samples."""
    cfg = {
        "data": {"cache_dir": str(REPO / "data" / "captcha"), "test_count": 500},
        "train": {"max_steps": LEARNING_STEPS},
        "checkpoint": {"save": "best"},
    }
    path = write_yaml(tmp_path / "cell.yaml", cfg)

    def run() -> dict:
        subprocess.run(
            [sys.executable, "-m", "harness.cell", str(path), "--out", str(tmp_path / "out")],
            cwd=REPO,
            check=True,
        )
        return read_summary(tmp_path / "out" / "summary.json")

    summary = benchmark.pedantic(run, rounds=1, iterations=1)
    m = summary["metrics"]
    benchmark.extra_info |= {
        "exact_match": m["exact_match"],
        "n": m["n"],
        "train_s": summary["timings"]["train_s"],
        "steps": summary["train"]["steps"],
    }
    print(
        f"\ntiny-vlm: {m['exact_match_k']}/{m['n']} = {100 * m['exact_match']:.1f}% exact match "
        f"after {summary['timings']['train_s']:.0f} s / {summary['train']['steps']} steps"
    )
    assert summary["outcome"] == "completed"
    assert summary["train"]["stop_reason"] == "budget"
    assert summary["train"]["steps"] == LEARNING_STEPS
    assert m["n"] == 500 and m["test_is_val"] is False
    assert m["exact_match"] >= 0.85, f"{m['exact_match_k']}/{m['n']} after {LEARNING_STEPS} steps"
