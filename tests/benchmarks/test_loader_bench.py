"""Loader cost on a ~500 MB safetensors checkpoint vs a bare ``load_file`` + ``load_state_dict``.

Run: ``.venv/bin/pytest tests/benchmarks/test_loader_bench.py -m slow --benchmark-only -q -s``.
The issue's targets: time <= 1.10x the bare load, peak memory <= 1.25x (checkpoint + base).

What each side includes (all in fresh subprocesses, torch single-threaded, page cache warm;
time = best of ``ROUNDS``, the sides interleaved so that machine noise hits them alike):

- ``bare (issue)``: ``model.load_state_dict(load_file(path))`` into a model built beforehand
  (``LlamaForCausalLM(config)``); building it is NOT timed. This is the issue's baseline.
- ``bare by hand``: what a user does from nothing: ``LlamaForCausalLM(config)`` (random init)
  + ``load_file`` + ``load_state_dict``; for scale only.
- ``load_checkpoint``: everything the loader does by default: detection, header/size checks,
  building the model (``from_pretrained``: skeleton on ``meta``, memory-mapped tensors assigned,
  no random init). An hf-full checkpoint loaded without ``base_model`` has nothing to compare
  against, so no probe forward runs (the report says so); with a base, the before/after probe
  adds one forward pass per side (~30 ms here: it reads every weight once).
- ``load_checkpoint(probe=False)``: the same with probing switched off.

Every side ends by touching every page of every weight (one element per 4 KiB): the loader
memory-maps the safetensors file, so without that its pages would be read lazily on first use
and both its time and its memory would look better than they are.

Memory: peak RSS (``VmHWM``) of a fresh process, reset by writing ``5`` to
``/proc/self/clear_refs`` right after the imports, so interpreter and library imports are not
counted. Memory-mapped checkpoint pages the process touched count (they are resident), so the
bare side holds checkpoint + base, the loader the checkpoint (mapped) once. The reference is
(checkpoint size + base size), base = the parameters of the pre-built model the issue's bare
side loads into.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
ROUNDS = 5
CONFIG = dict(
    vocab_size=32000,
    hidden_size=1024,
    intermediate_size=2816,
    num_hidden_layers=5,
    num_attention_heads=16,
    num_key_value_heads=16,
    tie_word_embeddings=False,
)

_PRELUDE = r"""
import json, sys, time
import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging
from loaders import load_checkpoint
hf_logging.disable_progress_bar()
torch.set_num_threads(1)
path, cfg = sys.argv[1], LlamaConfig(**json.loads(sys.argv[2]))
weights = path + "/model.safetensors"

def touch(model):
    # one element per 4 KiB page of every weight: a memory-mapped load is paid for here
    for p in model.parameters():
        p.detach().reshape(-1)[:: 1024].sum()
    return model

def bare(model):
    model.load_state_dict(load_file(weights))
    return touch(model)

def by_hand():
    bare(LlamaForCausalLM(cfg))
"""

_TIME = (
    _PRELUDE
    + r"""
rounds = int(sys.argv[3])
prebuilt = LlamaForCausalLM(cfg)
sides = {
    "bare": lambda: bare(prebuilt),
    "by_hand": by_hand,
    "loader": lambda: touch(load_checkpoint(path).model),
    "loader_no_probe": lambda: touch(load_checkpoint(path, probe=False).model),
}
load_checkpoint(path)  # warm the page cache and lazy imports for every side alike
times = {k: [] for k in sides}
for i in range(rounds):
    for name, fn in sides.items():
        if name == "by_hand" and i >= 2:
            continue  # ~1 s of random init; two rounds show its scale
        t = time.perf_counter()
        fn()
        times[name].append(time.perf_counter() - t)
print(json.dumps({k: min(v) for k, v in times.items()}))
"""
)

_MEMORY = (
    _PRELUDE
    + r"""
mode = sys.argv[3]
def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1])
open("/proc/self/clear_refs", "w").write("5")  # peak RSS := current RSS (imports excluded)
start = hwm_kb()
if mode == "bare":
    model = LlamaForCausalLM(cfg)  # the issue's pre-built model: its memory counts as "base"
    bare(model)
else:
    model = touch(load_checkpoint(path).model)
print(json.dumps({"peak_mb": (hwm_kb() - start) / 1024}))
"""
)


def _run(script: str, path: Path, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", script, str(path), json.dumps(CONFIG), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    d = tmp_path_factory.mktemp("bench") / "llama-500mb"
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**CONFIG)).save_pretrained(d)
    return d


def test_bench_loader_vs_bare(benchmark, checkpoint):
    """Side by side in one run: time and peak-RSS ratios, printed as a table."""
    times = benchmark.pedantic(lambda: _run(_TIME, checkpoint, str(ROUNDS)), rounds=1, iterations=1)
    mem = {m: _run(_MEMORY, checkpoint, m)["peak_mb"] for m in ("bare", "loader")}
    ckpt_mb = (checkpoint / "model.safetensors").stat().st_size / 2**20
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        n_params = sum(p.numel() for p in LlamaForCausalLM(LlamaConfig(**CONFIG)).parameters())
    base_mb = n_params * 4 / 2**20
    budget = ckpt_mb + base_mb
    rows = [
        ("bare (issue): load_file + load_state_dict, pre-built model", times["bare"], mem["bare"]),
        ("bare by hand: LlamaForCausalLM(cfg) + load_file + lsd", times["by_hand"], None),
        ("load_checkpoint (detect + checks + from_pretrained)", times["loader"], mem["loader"]),
        ("load_checkpoint(probe=False)", times["loader_no_probe"], None),
    ]
    lines = [
        f"\nloader benchmark: checkpoint {ckpt_mb:.0f} MB, base {base_mb:.0f} MB, "
        f"reference (checkpoint + base) {budget:.0f} MB, best of {ROUNDS}, 1 thread",
        f"{'side':62s} {'time s':>8s} {'x bare':>7s} {'peak MB':>8s} {'x ref':>6s}",
    ]
    for name, t, m in rows:
        ms = f"{m:8.0f} {m / budget:6.2f}" if m is not None else f"{'-':>8s} {'-':>6s}"
        lines.append(f"{name:62s} {t:8.4f} {t / times['bare']:7.2f} {ms}")
    print("\n".join(lines))
    figures = {
        "checkpoint_mb": round(ckpt_mb, 1),
        "base_mb": round(base_mb, 1),
        **{f"{k}_s": round(v, 4) for k, v in times.items()},
        "time_ratio": round(times["loader"] / times["bare"], 3),
        "time_ratio_no_probe": round(times["loader_no_probe"] / times["bare"], 3),
        "bare_peak_mb": round(mem["bare"], 1),
        "loader_peak_mb": round(mem["loader"], 1),
        "bare_memory_ratio_vs_ref": round(mem["bare"] / budget, 3),
        "loader_memory_ratio_vs_ref": round(mem["loader"] / budget, 3),
    }
    benchmark.extra_info.update(figures)
