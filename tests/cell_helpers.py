"""Small builders shared by the cell tests: tiny configs and datasets made in the test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.contracts.config import CellConfig, parse_cell_config
from harness.contracts.keys import set_dotted

TINY_MODEL = {
    "hidden_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_size": 64,
    "vision_channels": 16,
    "image_tokens": 8,
}


def tiny_cell(cache_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A cell config that trains in a second or two: small data, small model, few steps."""
    cfg: dict[str, Any] = {
        "data": {"cache_dir": str(cache_dir), "train_count": 64, "val_count": 8, "test_count": 8},
        "model": dict(TINY_MODEL),
        "train": {
            "max_steps": 6,
            "micro_batch": 8,
            "eval_every": 3,
            "log_every": 1,
            "warmup_steps": 2,
        },
        "eval": {"batch_size": 8, "max_new_tokens": 8},
        "runtime": {"threads": 1},
    }
    for key, value in overrides.items():
        set_dotted(cfg, key.replace("__", "."), value)
    return cfg


def tiny_config(cache_dir: Path, **overrides: Any) -> CellConfig:
    return parse_cell_config(tiny_cell(cache_dir, **overrides))


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def write_text_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in rows))
    return path


REPO = Path(__file__).resolve().parents[1]


def run_cell_cli(config: Path, out: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m harness.cell CONFIG --out OUT`` in a fresh process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "harness.cell", str(config), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
