"""Cell figures, measured side by side (no thresholds on time: machines are noisy).

- Training-step throughput of the harness (``train_step`` through PrefixLM, ``make_optimizer``)
  vs a bare hand-written PyTorch loop on the same model and batch, for the demo's model
  (``experiments/attention.yaml``); and, beside it, the step the demo trained before it was
  made fast (the max-pool stem at 48 image tokens, the per-parameter AdamW loop), so that
  ``make bench`` prints before and after in one run. Ratios and samples/s are in ``extra_info``.
- tiny-vlm learns captchas: the demo's causal/sdpa cell (seed 0), read from
  ``experiments/attention.yaml`` (so the recipe and its test cannot drift apart), through the
  real cell CLI: >= 85% exact match on the 500 held-out captchas after its fixed step budget.
  The training time is reported, never asserted.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from harness.cell.encoding import load_splits
from harness.cell.train import make_optimizer, train_step
from harness.contracts.config import parse_cell_config
from harness.contracts.store_files import read_summary
from harness.models import build_model
from harness.runner.matrix import load_matrix
from tests.cell_helpers import write_yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "experiments" / "attention.yaml"
BEFORE_MODEL = {"image_tokens": 48, "image_rows": None, "num_heads": 4, "num_layers": 2}
"""tiny-vlm as the demo trained it before issue 14 (plus a contiguous-format stem and the
per-parameter AdamW loop, below)."""


def demo_cell(mode: str = "causal", impl: str = "sdpa") -> dict:
    """The resolved config of the demo matrix's seed-0 cell of one attention configuration."""
    for cell in load_matrix(DEMO).cells:
        c = cell.config
        if (c["attention"]["mode"], c["attention"]["impl"], c["seed"]) == (mode, impl, 0):
            return c
    raise LookupError(f"{DEMO} has no {mode}/{impl} cell at seed 0")


@pytest.fixture(scope="module")
def setups(tmp_path_factory):
    torch.set_num_threads(1)  # a per-thread figure: comparable across runs and machines' loads
    cache = tmp_path_factory.mktemp("captcha")
    demo = demo_cell()
    out = {}
    for name, model_cfg in (
        ("after", demo["model"]),
        ("before", {**demo["model"], **BEFORE_MODEL}),
    ):
        cfg = parse_cell_config(
            {
                "data": {
                    "cache_dir": str(cache),
                    "train_count": 64,
                    "val_count": 8,
                    "test_count": 8,
                },
                "model": model_cfg,
                "train": {"micro_batch": demo["train"]["micro_batch"]},
            }
        )
        torch.manual_seed(0)
        model, _ = build_model(cfg.model)
        model.set_attention("causal", "sdpa")
        if name == "before":
            model.vision.stem.to(memory_format=torch.contiguous_format)
        train_set = load_splits(cfg.data).encode(model)[0]
        out[name] = (cfg, model, train_set.batch(list(range(cfg.train.micro_batch))))
    return out


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


def _loop_adamw(model, cfg) -> torch.optim.Optimizer:
    """The optimizer the harness used before: AdamW's per-parameter loop (torch's CPU default)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.train.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.train.lr, betas=(0.9, 0.95), foreach=False)


ROUNDS = 60
"""Interleaved rounds: one step of each side per round, so that a change in the machine's load
hits all sides alike (the medians are compared)."""


def test_train_step_throughput(benchmark, setups):
    """Median step time of the harness vs the bare loop (same model, batch and optimizer), and vs
    the step before issue 14, interleaved; the pytest-benchmark row is the harness step."""
    cfg, model, batch = setups["after"]
    old_cfg, old_model, old_batch = setups["before"]
    opt, old_opt = make_optimizer(model, cfg.train), _loop_adamw(old_model, old_cfg)
    steps = {
        "harness": lambda: train_step(model, opt, [batch], cfg.train),
        "bare": lambda: _bare_step(model, opt, batch),
        "before": lambda: train_step(old_model, old_opt, [old_batch], old_cfg.train),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(ROUNDS + 3):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            if r >= 3:  # warm-up rounds
                times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    benchmark.pedantic(steps["harness"], rounds=20, iterations=1)
    samples = batch.input_ids.shape[0]
    benchmark.extra_info |= {
        "throughput_vs_bare": med["bare"] / med["harness"],
        "speedup_vs_before": med["before"] / med["harness"],
        "samples_per_s": samples / med["harness"],
        "samples_per_s_bare": samples / med["bare"],
        "samples_per_s_before": samples / med["before"],
    }
    print(
        f"\ndemo step ({samples} samples, 1 thread), median of {ROUNDS} interleaved rounds: "
        f"harness {med['harness'] * 1e3:.1f} ms, bare loop {med['bare'] * 1e3:.1f} ms "
        f"(harness throughput / bare = {med['bare'] / med['harness']:.3f}x); before issue 14 "
        f"{med['before'] * 1e3:.1f} ms ({med['before'] / med['harness']:.2f}x slower)"
    )


@pytest.mark.slow
def test_tiny_vlm_learns_captchas(benchmark, tmp_path):
    """The demo's causal cell at seed 0 (the first of its matched seeds) through the real cell
    CLI: >= 85% exact match on 500 held-out captchas after its step budget (aim: >= 88% on the
    machine the recipe was calibrated on, so that another CPU's float kernels still clear 85%;
    the demo's goal, the mean over its seeds, is measured by `make demo`, README "The demo's
    recipe")."""
    cfg = demo_cell()
    cfg["data"]["cache_dir"] = str(REPO / "data" / "captcha")  # the demo's cache
    path = write_yaml(tmp_path / "cell.yaml", cfg)

    def run() -> dict:
        subprocess.run(
            [sys.executable, "-m", "harness.cell", str(path), "--out", str(tmp_path / "out")],
            cwd=REPO,
            check=True,
        )
        return read_summary(tmp_path / "out" / "summary.json")

    summary = benchmark.pedantic(run, rounds=1, iterations=1)
    m, steps = summary["metrics"], cfg["train"]["max_steps"]
    benchmark.extra_info |= {
        "exact_match": m["exact_match"],
        "n": m["n"],
        "train_s": summary["timings"]["train_s"],
        "steps": summary["train"]["steps"],
    }
    print(
        f"\ntiny-vlm (demo recipe): {m['exact_match_k']}/{m['n']} = {100 * m['exact_match']:.1f}% "
        f"exact match after {summary['train']['steps']} steps / {summary['timings']['train_s']:.0f} s"
    )
    assert summary["outcome"] == "completed"
    assert summary["train"]["stop_reason"] == "budget"
    assert summary["train"]["steps"] == steps
    assert m["n"] == 500 and m["test_is_val"] is False
    assert m["exact_match"] >= 0.85, f"{m['exact_match_k']}/{m['n']} after {steps} steps"
