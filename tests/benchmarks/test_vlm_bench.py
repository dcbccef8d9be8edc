"""hf-vlm figures per family, side by side (no thresholds on time: machines are noisy).

The harness's training step (``train_step`` through HFVisionLM: the family's batching, positions
and, for a mode that is not the family's own, the harness's 4D mask) vs a bare PyTorch loop over
the same model and batch (the model's own forward with ``labels``, its own mask, ``backward``,
the same AdamW), for causal and image-bidirectional attention (sdpa), on each family's tiny
folder (``python -m harness.models.tiny``) at the sequence lengths its processor gives a 96 x 32
captcha. Ratios (bare time / harness time: 1.0 = as fast as the bare loop; goal >= 0.95) are
printed and in ``extra_info``. A fourth timing, the harness building the image-bidirectional 4D
mask alone, splits that mode's ratio into what the harness adds each step (the mask) and what
the mask then costs the model (sdpa with a dense mask instead of its causal kernel, the mode's
own price).

Timed as the CPU time of the calling thread (``time.thread_time``; torch runs on one thread
here, backward included), so other processes on a shared machine lengthen the wall time but
hardly the figure; the four sides are interleaved over ``ROUNDS`` rounds in a rotating order
and their medians compared, with the spread (interquartile range over median) and the load
average beside them.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
import torch

from harness.cell.train import make_optimizer, train_step
from harness.contracts.config import TrainConfig
from harness.models.families import FAMILIES
from harness.models.tiny import write_tiny
from tests.models.helpers import captcha_batch, load

ROUNDS = 60
"""Interleaved rounds: one step of each side per round, in a rotating order (medians compared)."""
WARMUP = 3
"""Rounds run first and not timed."""


def _spread(ts: list[float]) -> float:
    q = statistics.quantiles(ts, n=4)
    return (q[2] - q[0]) / statistics.median(ts)


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
    batch = captcha_batch(model)
    cfg = TrainConfig(lr=1e-3, warmup_steps=1)
    opt = make_optimizer(model, cfg)
    model.train()

    def harness(mode):
        def step():
            model.attention_mode = mode  # sdpa for both: set_attention once, outside the timing
            train_step(model, opt, [batch], cfg)

        return step

    def mask_only():
        model.attention_mode = "image_bidirectional"
        model.attention_inputs(batch.input_ids, batch.attention_mask, batch.extras or {})

    steps = {
        "causal": harness("causal"),
        "image_bidirectional": harness("image_bidirectional"),
        "bare": lambda: _bare_step(model, opt, batch),
        "mask_building": mask_only,
    }
    names = list(steps)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(ROUNDS + WARMUP):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.thread_time()
            steps[name]()
            if r >= WARMUP:
                times[name].append(time.thread_time() - t0)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    model.set_attention("causal", "sdpa")
    benchmark.pedantic(lambda: train_step(model, opt, [batch], cfg), rounds=5, iterations=1)
    info = {
        "seq_len": int(batch.input_ids.shape[1]),
        "bare_over_causal": med["bare"] / med["causal"],
        "bare_over_image_bidirectional": med["bare"] / med["image_bidirectional"],
        "mask_building_share": med["mask_building"] / med["image_bidirectional"],
        **{f"median_{k}_ms": v * 1e3 for k, v in med.items()},
        **{f"spread_{k}": _spread(ts) for k, ts in times.items()},
        "clock": "time.thread_time (CPU time of the calling thread)",
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    benchmark.extra_info.update(info)
    print(
        f"\n{family}: S={info['seq_len']} harness causal {med['causal'] * 1e3:.1f} ms, "
        f"image_bidirectional {med['image_bidirectional'] * 1e3:.1f} ms, bare loop "
        f"{med['bare'] * 1e3:.1f} ms; bare/harness {info['bare_over_causal']:.2f}x causal, "
        f"{info['bare_over_image_bidirectional']:.2f}x image_bidirectional, of whose step "
        f"building the mask is {med['mask_building'] * 1e3:.2f} ms "
        f"({100 * info['mask_building_share']:.1f}%) (CPU time, medians "
        f"of {ROUNDS}, spread {max(info[f'spread_{k}'] for k in steps):.2f}, load "
        f"{info['load_avg_1m']})"
    )
    assert all(t > 0 for t in med.values())
