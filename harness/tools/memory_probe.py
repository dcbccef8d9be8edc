"""Peak memory of one training step per attention mode, each in a fresh process.

``python -m harness.tools.memory_probe [--layers 4 --hidden 1024 --heads 32 --prefix 730 --text 32]``
prints a markdown table: the extra peak RSS of one fp32 forward + backward over the built model,
for causal and prefix-bidirectional attention in both implementations, and the ratio to
causal/sdpa (``make bench`` runs it as ``tests/benchmarks/test_attention_memory.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch

from harness.cell.attention import (
    CPU_IMPLS,
    attn_implementation,
    build_attention_mask,
    prefix_ids_from_mask,
)
from harness.cell.memory import status_kb


def _tiny_llama(layers: int, hidden: int, heads: int, vocab: int, attn: str) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=4096,
        attn_implementation=attn,
    )
    return LlamaForCausalLM(cfg)


def measure_one(
    mode: str, impl: str, layers: int, hidden: int, heads: int, prefix: int, text: int
) -> dict:
    """Extra peak RSS (MB) of one fp32 forward + backward, batch 1, over the RSS after model build.

    Meant for a fresh process per mode. On Linux it resets the ``VmHWM`` high-water mark through
    ``/proc/self/clear_refs`` after the build (``ru_maxrss`` cannot be reset, and after exec it
    starts at the parent's peak); elsewhere it falls back to the ``ru_maxrss`` difference.
    """
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = _tiny_llama(layers, hidden, heads, 512, attn_implementation(mode, impl)).train()
    embeds = torch.randn(1, prefix + text, hidden, requires_grad=True)
    mask_2d = torch.ones(1, prefix + text, dtype=torch.long)
    labels = torch.randint(0, 512, (1, prefix + text))
    ids = prefix_ids_from_mask(mask_2d, prefix)
    mask = build_attention_mask(model, embeds, mask_2d, ids, mode, impl)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before, source = status_kb("VmRSS"), "VmHWM"
    except OSError:
        before, source = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss.backward()
    if source == "VmHWM":
        peak = status_kb("VmHWM")
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mode": mode, "impl": impl, "extra_mb": (peak - before) / 1024, "source": source}


def measure_memory(
    layers: int = 4, hidden: int = 1024, heads: int = 32, prefix: int = 730, text: int = 32
) -> list[dict]:
    """``measure_one`` for every (mode, impl), each in its own subprocess; ratios vs causal/sdpa."""
    rows, root = [], Path(__file__).resolve().parents[1]
    # A fixed mmap threshold returns freed tensors to the OS at once and one thread keeps glibc to
    # one arena: without them the same run varies by +-60 MB; with them, by < 1 MB.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}
    for mode, impl in CPU_IMPLS:  # causal/sdpa first: the baseline
        args = [str(v) for v in (layers, hidden, heads, prefix, text)]
        cmd = [
            sys.executable,
            "-m",
            "harness.tools.memory_probe",
            "--measure-one",
            mode,
            impl,
            *args,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=root, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"measurement {mode}/{impl} failed:\n{proc.stderr[-2000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for row in rows:
        row["ratio"] = row["extra_mb"] / rows[0]["extra_mb"]
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown table of ``measure_memory`` rows."""
    lines = ["| mode | impl | extra peak RSS (MB) | vs causal/sdpa |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['impl']} | {r['extra_mb']:.0f} | {r['ratio']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m harness.tools.memory_probe [--layers 4 --hidden 1024 ...]``."""
    p = argparse.ArgumentParser(
        prog="python -m harness.tools.memory_probe", description=__doc__.split("\n")[0]
    )
    p.add_argument("--measure-memory", action="store_true", help="print the peak-memory table")
    p.add_argument("--measure-one", nargs=7, metavar="X", help=argparse.SUPPRESS)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--prefix", type=int, default=730, help="BOS + image tokens")
    p.add_argument("--text", type=int, default=32, help="text tokens after the prefix")
    args = p.parse_args(argv)
    if args.measure_one:
        mode, impl, *nums = args.measure_one
        print(json.dumps(measure_one(mode, impl, *map(int, nums))))
        return 0
    if not args.measure_memory:
        p.print_help()
        return 2
    rows = measure_memory(args.layers, args.hidden, args.heads, args.prefix, args.text)
    print(
        f"Llama {args.layers} layers, hidden {args.hidden}, {args.heads} heads, "
        f"{args.prefix} + {args.text} tokens, batch 1, fp32, forward + backward"
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
