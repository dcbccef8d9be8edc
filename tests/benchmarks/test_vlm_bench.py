"""hf-vlm figures per family, side by side (no thresholds on time: machines are noisy).

The harness's training step (``train_step`` through HFVisionLM: the family's batching, positions
and the harness's 4D mask) vs a bare PyTorch loop over the same model and batch (the model's own
forward with ``labels``, its own mask, ``backward``, the same AdamW), for causal and
image-bidirectional attention (sdpa), on each family's tiny folder (``python -m
harness.models.tiny``) at the sequence lengths its processor gives a 96 x 32 captcha. Ratios
(bare time / harness time: 1.0 = as fast as the bare loop) are printed and in ``extra_info``.
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch
from PIL import Image

from harness.cell.train import make_optimizer, train_step
from harness.contracts.config import TrainConfig
from harness.models.families import FAMILIES
from harness.models.tiny import write_tiny
from tests.models.helpers import load

ROUNDS = 20
"""Interleaved rounds: one step of each side per round (medians compared)."""


def _bare_step(model, opt, batch) -> None:
    vlm = model.base_vlm()
    extras = batch.extras or {}
    out = vlm(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        pixel_values=batch.pixel_values,
        labels=batch.labels,
        **extras,
    )
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_vlm_train_step_vs_bare_loop(benchmark, tmp_path, family):
    torch.set_num_threads(1)
    model = load(write_tiny(family, tmp_path / family))
    images = [Image.new("RGB", (96, 32), (i * 40, 90, 200 - i * 40)) for i in range(4)]
    enc = [model.encode_sample("What is the text in this captcha image?", im) for im in images]
    answers = [model.answer_ids(a) for a in ("123456", "654321", "111222", "909090")]
    batch = model.collate([e[0] for e in enc], answers, [e[1] for e in enc])
    cfg = TrainConfig(lr=1e-3, warmup_steps=1)
    opt = make_optimizer(model, cfg)
    model.train()

    def harness(mode):
        def step():
            model.attention_mode = mode  # sdpa for both: set_attention once, outside the timing
            train_step(model, opt, [batch], cfg)

        return step

    steps = {
        "causal": harness("causal"),
        "image_bidirectional": harness("image_bidirectional"),
        "bare": lambda: _bare_step(model, opt, batch),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(ROUNDS + 2):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            if r >= 2:
                times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    model.set_attention("causal", "sdpa")
    benchmark.pedantic(lambda: train_step(model, opt, [batch], cfg), rounds=5, iterations=1)
    info = {
        "seq_len": int(batch.input_ids.shape[1]),
        "bare_over_causal": med["bare"] / med["causal"],
        "bare_over_image_bidirectional": med["bare"] / med["image_bidirectional"],
        **{f"median_{k}_ms": v * 1e3 for k, v in med.items()},
    }
    benchmark.extra_info.update(info)
    print(
        f"\n{family}: S={info['seq_len']} harness causal {med['causal'] * 1e3:.1f} ms, "
        f"image_bidirectional {med['image_bidirectional'] * 1e3:.1f} ms, bare loop "
        f"{med['bare'] * 1e3:.1f} ms; bare/harness {info['bare_over_causal']:.2f}x causal, "
        f"{info['bare_over_image_bidirectional']:.2f}x image_bidirectional"
    )
    assert all(t > 0 for t in med.values())
