"""Loader overhead on a ~500 MB safetensors checkpoint vs bare ``load_file`` + ``load_state_dict``.

Run: ``.venv/bin/pytest tests/benchmarks/test_loader_bench.py -m slow --benchmark-enable -q``.
Figures, not timed tests: the ratios are printed and stored in ``extra_info``; targets are
time <= 1.10x and peak memory <= 1.25x of (checkpoint + base).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
CONFIG = dict(
    vocab_size=32000,
    hidden_size=1024,
    intermediate_size=2816,
    num_hidden_layers=5,
    num_attention_heads=16,
    num_key_value_heads=16,
    tie_word_embeddings=False,
)

_MEASURE = r"""
import json, resource, sys, time
import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM
mode, path, cfg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
torch.set_num_threads(1)
t = time.perf_counter()
if mode == "bare":
    model = LlamaForCausalLM(LlamaConfig(**cfg))
    t = time.perf_counter()
    model.load_state_dict(load_file(path + "/model.safetensors"))
else:
    from loaders import load_checkpoint
    model = load_checkpoint(path).model
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    d = tmp_path_factory.mktemp("bench") / "llama-500mb"
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**CONFIG)).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def base(checkpoint):
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(**CONFIG))


def _bare(path: Path, model) -> None:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(path / "model.safetensors"))


def test_bench_bare_load(benchmark, checkpoint, base):
    benchmark.group = "load ~500MB"
    benchmark.pedantic(_bare, args=(checkpoint, base), rounds=3, iterations=1)


def test_bench_load_checkpoint(benchmark, checkpoint):
    from loaders import load_checkpoint

    benchmark.group = "load ~500MB"
    benchmark.pedantic(load_checkpoint, args=(checkpoint,), rounds=3, iterations=1)


def _measure(mode: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, mode, str(path), json.dumps(CONFIG)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_bench_ratios(benchmark, checkpoint, base):
    """Side by side in one run: time ratio (in process, best of 3) and peak-RSS ratio (subprocesses)."""
    from loaders import load_checkpoint

    def best(fn) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    bare_s = best(lambda: _bare(checkpoint, base))
    loader_s = benchmark.pedantic(
        lambda: best(lambda: load_checkpoint(checkpoint)), rounds=1, iterations=1
    )
    bare_mem, loader_mem = _measure("bare", checkpoint), _measure("loader", checkpoint)
    ckpt_mb = (checkpoint / "model.safetensors").stat().st_size / 2**20
    figures = {
        "checkpoint_mb": round(ckpt_mb, 1),
        "bare_s": round(bare_s, 3),
        "loader_s": round(loader_s, 3),
        "time_ratio": round(loader_s / bare_s, 3),
        "bare_peak_mb": round(bare_mem["peak_mb"], 1),
        "loader_peak_mb": round(loader_mem["peak_mb"], 1),
        "memory_ratio_vs_bare": round(loader_mem["peak_mb"] / bare_mem["peak_mb"], 3),
    }
    benchmark.extra_info.update(figures)
    print("\nloader benchmark:", json.dumps(figures))
