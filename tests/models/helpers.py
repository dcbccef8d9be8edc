"""Helpers of the VLM family tests and benches."""

from __future__ import annotations

import statistics
from contextlib import nullcontext

import torch
from PIL import Image

from harness.cell.memory import PeakMeter, rss_bytes
from harness.cell.train import make_optimizer, train_step
from harness.contracts.config import ModelConfig, TrainConfig
from harness.contracts.keys import set_dotted
from harness.models.hf_vlm import HFVisionLM, build_hf_vlm
from harness.models.prefix_lm import EncodedBatch

QUESTION = "What is the text in this captcha image?"
ANSWERS = ("123456", "654321", "111222", "909090")


def load(path) -> HFVisionLM:
    """A fresh model from a tiny folder (fp32, causal/sdpa)."""
    model = build_hf_vlm(ModelConfig(name="hf-vlm", path=str(path)))
    model.set_attention("causal", "sdpa")
    return model


def vlm_cell(cache_dir, model_path, steps: int = 3, **overrides) -> dict:
    """An hf-vlm cell config on a tiny folder that runs in seconds: 8 two-digit captchas to
    train on, 4 to validate and 4 to test, ``steps`` steps of 4 and one evaluation at the end.
    ``overrides`` are dotted keys (``train__method="lora"`` or ``**{"train.method": "lora"}``)."""
    cfg: dict = {
        "data": {
            "kind": "captcha",
            "cache_dir": str(cache_dir),
            "train_count": 8,
            "val_count": 4,
            "test_count": 4,
            "digits": 2,
        },
        "model": {"name": "hf-vlm", "path": str(model_path)},
        "train": {"max_steps": steps, "micro_batch": 4, "eval_every": steps, "warmup_steps": 1},
        "eval": {"batch_size": 4, "max_new_tokens": 2},
        "runtime": {"threads": 1},
    }
    for key, value in overrides.items():
        set_dotted(cfg, key.replace("__", "."), value)
    return cfg


def captcha_batch(model: HFVisionLM, n: int = 4) -> EncodedBatch:
    """``n`` 96 x 32 captcha-sized images with the seed's question and 6-digit answers: the
    sequence length the family's processor gives the seed's data."""
    images = [Image.new("RGB", (96, 32), (i * 40, 90, 200 - i * 40)) for i in range(n)]
    enc = [model.encode_sample(QUESTION, im) for im in images]
    answers = [model.answer_ids(ANSWERS[i % len(ANSWERS)]) for i in range(n)]
    return model.collate([e[0] for e in enc], answers, [e[1] for e in enc])


def step_memory(
    model: HFVisionLM,
    batch: EncodedBatch,
    device: torch.device,
    autocast=nullcontext,
    repeats: int = 1,
) -> dict:
    """Peak memory of a steady-state training step (forward, backward, AdamW): a first step with
    the same optimizer puts AdamW's state and one-time allocations in place, then ``repeats``
    steps are measured and the median kept. Measured as the cell measures a phase
    (``harness.cell.memory.PeakMeter``): CUDA's peak allocated bytes, on CPU the process's peak
    RSS (VmHWM, reset at the start of each step); returned as the peak over what was in use when
    the step started (``extra_bytes``), with the bytes of the tensors autograd saved for backward
    (``saved_bytes``: activations, masks; exact on any device). Set the attention mode first."""
    cfg = TrainConfig(lr=1e-3, warmup_steps=1, grad_clip=1.0)
    opt = make_optimizer(model, cfg)
    model.train()
    train_step(model, opt, [batch], cfg, autocast)
    meter = PeakMeter(device)
    extras, saved = [], {}
    for _ in range(repeats):
        saved = {}

        def pack(t: torch.Tensor, saved=saved) -> torch.Tensor:
            storage = t.untyped_storage()
            saved[storage.data_ptr()] = storage.nbytes()
            return t

        meter.start()
        cuda = device.type == "cuda"
        before = torch.cuda.memory_allocated(device) if cuda else (rss_bytes() or 0)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            train_step(model, opt, [batch], cfg, autocast)
        extras.append(int(meter.peak().peak_bytes) - int(before))
    return {
        "kind": meter.kind,
        "seq_len": int(batch.input_ids.shape[1]),
        "extra_bytes": int(statistics.median(extras)),
        "extra_bytes_each": extras,
        "saved_bytes": sum(saved.values()),
    }
