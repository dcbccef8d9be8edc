"""Synthetic stores shaped like real ones, for the plot tests: the demo matrix and a wide one.

``demo_store`` mirrors ``experiments/attention.yaml``: a paired `attention` axis (mode + impl,
three options) times a paired `accumulation` axis (grad_accum 4 / 8 at an equal sample budget,
800 / 400 steps), with ``matrix.json`` as the runner writes it; one cell stopped at its time cap.
``long_store`` has 12 cells whose axis values are long paths and strings, one OOM and one
failure.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from harness.contracts.schema import METRICS_FILE, SUMMARY_FILE
from harness.contracts.store_files import write_json
from tests.reports.synthetic import GIB, pattern, write_cell

MIB = 2**20
ATTENTION = [
    {"attention.mode": "causal", "attention.impl": "sdpa"},
    {"attention.mode": "prefix_bidirectional", "attention.impl": "sdpa"},
    {"attention.mode": "prefix_bidirectional", "attention.impl": "eager_dense"},
]
ACCUMULATION = [
    {"train.grad_accum": 4, "train.max_steps": 800},
    {"train.grad_accum": 8, "train.max_steps": 400},
]


def _patch_summary(cell_dir: Path, **train: Any) -> None:
    """Set train fields (samples, planned steps, stop reason) and a distinct eval peak."""
    path = cell_dir / SUMMARY_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("train"):
        data["train"].update(train)
    memory = data.get("memory") or {}
    if (memory.get("train") or {}).get("peak_bytes"):
        memory["eval"]["peak_bytes"] = int(memory["train"]["peak_bytes"] * 0.7)
    path.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")


def _curve(cell_dir: Path, steps: int, per_step: int, floor: float, tau: float) -> None:
    """metrics.jsonl of a run logged every 10 steps whose loss decays with samples seen."""
    lines = []
    for step in range(10, steps + 1, 10):
        loss = floor + (3.8 - floor) * math.exp(-step * per_step / tau)
        lines.append(json.dumps({"kind": "train", "step": step, "loss": round(loss, 4)}) + "\n")
    (cell_dir / METRICS_FILE).write_text("".join(lines), encoding="utf-8")


def demo_store(root: Path) -> Path:
    """Six cells like `make demo` (attention x accumulation), one truncated by its time cap."""
    store = root / "attention"
    scores = [431, 241, 294, 312, 209, 310]
    i = 0
    for attn in ATTENTION:
        for acc in ACCUMULATION:
            axes = {**attn, **acc}
            planned = acc["train.max_steps"]
            capped = attn["attention.impl"] == "eager_dense" and planned == 800
            steps = 641 if capped else planned
            cell = write_cell(
                store,
                f"cell{i}",
                axes,
                correct=pattern(scores[i], 500, f"demo{i}"),
                matrix="attention",
                steps=steps,
                peak_train=int((300 + 40 * i) * MIB),
                budget=None,
                settings={"train.micro_batch": 4},
            )
            ga = acc["train.grad_accum"]
            _curve(cell, steps, 4 * ga, 0.3 + 0.1 * i, 2500.0 * (1 + 0.4 * i) * ga / 4)
            _patch_summary(
                cell,
                samples_seen=steps * 4 * acc["train.grad_accum"],
                steps_planned=planned,
                samples_planned=planned * 4 * acc["train.grad_accum"],
                stop_reason="time_cap" if capped else "budget",
            )
            i += 1
    axes = {
        "attention": ATTENTION,
        "accumulation": ACCUMULATION,
    }
    paired = {
        "attention": ["attention.mode", "attention.impl"],
        "accumulation": ["train.grad_accum", "train.max_steps"],
    }
    meta = {
        "name": "attention",
        "description": "Causal vs prefix-bidirectional attention (demo-shaped synthetic store).",
        "source": "experiments/attention.yaml",
        "axes": axes,
        "paired": paired,
    }
    write_json(store / "matrix.json", meta)
    return store


LONG_MODELS = [
    "/data/checkpoints/llama-3.2-1b-instruct-finetuned-captcha-v2",
    "/data/checkpoints/llama-3.2-3b-instruct-finetuned-captcha-v2",
    "/data/checkpoints/qwen2.5-vl-3b-instruct-finetuned-captcha-v2",
    "/data/checkpoints/smolvlm-256m-instruct-finetuned-captcha-v2",
]
LONG_TARGETS = [
    ["q_proj", "k_proj", "v_proj", "o_proj"],
    ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    ["all_linear_layers_except_the_vision_tower"],
]


def long_store(root: Path) -> Path:
    """Twelve cells (4 long model paths x 3 long target lists); one OOM, one failure."""
    store = root / "long"
    i = 0
    for model in LONG_MODELS:
        for targets in LONG_TARGETS:
            axes = {"model.path": model, "train.lora.target_modules": targets}
            kw: dict[str, Any] = {}
            if i == 5:
                kw = {
                    "outcome": "oom",
                    "oom": {
                        "phase": "train",
                        "in_use_bytes": int(1.9 * GIB),
                        "budget_bytes": 2 * GIB,
                        "message": "out of memory",
                    },
                }
            elif i == 8:
                kw = {
                    "outcome": "failed",
                    "error": {"type": "RuntimeError", "message": "boom", "phase": "train"},
                }
            else:
                kw = {"correct": pattern(40 + 13 * i, 200, f"long{i}")}
            write_cell(
                store,
                f"cell{i:02d}",
                axes,
                matrix="long",
                steps=30 + 10 * (i % 4),
                peak_train=int((0.6 + 0.1 * i) * GIB),
                **kw,
            )
            i += 1
    return store
