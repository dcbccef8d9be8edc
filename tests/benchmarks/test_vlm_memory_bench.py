"""hf-vlm peak memory of a training step per family: image-bidirectional (sdpa) vs causal (goal:
<= 1.05x), side by side in one run, at the sequence lengths the tiny folders' processors give a
batch of four 96 x 32 captchas.

What is measured (``tests.models.helpers.step_memory``): a steady-state harness training step
(``train_step``: forward with the harness's 4D mask, backward, AdamW; the median of ``REPEATS``
steps after one that puts the optimizer state and one-time allocations in place) on the tiny folder
(``python -m harness.models.tiny``), each (family, mode) in a fresh process so that no allocator
reuse mixes the two. Two figures: the step's peak RSS over the RSS when it starts (VmHWM reset
through /proc/self/clear_refs, as ``harness.cell.memory.PeakMeter`` measures a cell's phase; on a
CUDA machine ``tests/test_gpu.py`` gives the CUDA peak), and the bytes of the tensors autograd
saved for backward (activations and masks; exact, so it is the one asserted: <= 1.05x). The tiny
configs make both small (hundreds of kB), so RSS is coarse (4 kB pages, malloc's free lists) and
only printed and kept in ``extra_info``, beside the machine's load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.models.families import FAMILIES
from harness.models.tiny import write_tiny

REPO = Path(__file__).resolve().parents[2]
MODES = ("causal", "image_bidirectional")
REPEATS = 7
"""Measured steps per process (after one warm-up step); the median peak is kept."""


def measure(folder: str, mode: str) -> dict:
    """In a fresh process: ``step_memory`` of one step of ``mode`` (sdpa) on CPU, one thread."""
    import torch

    from tests.models.helpers import captcha_batch, load, step_memory

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = load(folder)
    model.set_attention(mode, "sdpa")
    return step_memory(model, captcha_batch(model), torch.device("cpu"), repeats=REPEATS)


def _in_child(folder: Path, mode: str) -> dict:
    code = (
        "import json, sys; from tests.benchmarks.test_vlm_memory_bench import measure; "
        "print(json.dumps(measure(sys.argv[1], sys.argv[2])))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder), mode],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_vlm_image_bidirectional_vs_causal_memory(benchmark, tmp_path, family):
    folder = write_tiny(family, tmp_path / family)
    rows = benchmark.pedantic(
        lambda: {mode: _in_child(folder, mode) for mode in MODES}, rounds=1, iterations=1
    )
    causal, bidir = rows["causal"], rows["image_bidirectional"]
    info = {
        "seq_len": causal["seq_len"],
        "batch": 4,
        "kind": causal["kind"],
        "load_avg_1m": round(os.getloadavg()[0], 2),
        **{f"{m}_extra_rss_kb": rows[m]["extra_bytes"] // 1024 for m in MODES},
        **{f"{m}_saved_kb": rows[m]["saved_bytes"] // 1024 for m in MODES},
        **{
            f"{m}_extra_rss_kb_each": [b // 1024 for b in rows[m]["extra_bytes_each"]]
            for m in MODES
        },
        "rss_ratio": bidir["extra_bytes"] / max(causal["extra_bytes"], 1),
        "saved_ratio": bidir["saved_bytes"] / causal["saved_bytes"],
    }
    benchmark.extra_info.update(info)
    print(
        f"\n{family}: S={info['seq_len']} x 4, step peak RSS over start: causal "
        f"{info['causal_extra_rss_kb']} kB, image_bidirectional "
        f"{info['image_bidirectional_extra_rss_kb']} kB ({info['rss_ratio']:.3f}x); saved for "
        f"backward: {info['causal_saved_kb']} kB vs {info['image_bidirectional_saved_kb']} kB "
        f"({info['saved_ratio']:.3f}x); load {info['load_avg_1m']}"
    )
    assert causal["seq_len"] == bidir["seq_len"] and causal["saved_bytes"] > 0
    assert info["saved_ratio"] <= 1.05
