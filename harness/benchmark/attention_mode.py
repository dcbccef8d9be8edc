"""The attention mode a harness checkpoint was trained with, which its file does not record.

A ``prefix_bidirectional`` cell's model scored with causal attention (the loaded PrefixLM's
default) is not the model that was trained. The mode comes from, in order: ``--attention``, the
W&B artifact's metadata (``attention``, written by the harness's mirror), or the cell's
``config.yaml`` in the run store (``<cell>/ckpt/best.safetensors`` -> ``<cell>/config.yaml``).
Applied to both base and trained, so they are scored alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.benchmark.errors import BenchmarkInputError
from harness.cell.attention import ATTENTION_IMPLS
from harness.models.vlm_masks import VLM_MODES

CELL_CONFIG = "config.yaml"
MODES: tuple[tuple[str, str], ...] = (
    *ATTENTION_IMPLS,
    *((m, i) for m in VLM_MODES for i in ("sdpa", "eager_dense") if (m, i) not in ATTENTION_IMPLS),
)
"""(mode, impl) pairs a checkpoint may record: the embedded model's and hf-vlm's (the model's own
``set_attention`` refuses a mode it lacks, e.g. ``native`` on tiny-vlm)."""


@dataclass(frozen=True)
class Attention:
    mode: str
    impl: str
    origin: str


def parse_flag(text: str) -> tuple[str, str]:
    """``MODE[:IMPL]`` (impl defaults to sdpa), checked against harness.cell.attention."""
    mode, _, impl = text.partition(":")
    impl = impl or "sdpa"
    if (mode, impl) not in MODES:
        valid = ", ".join(f"{m}:{i}" for m, i in MODES)
        raise BenchmarkInputError(f"--attention {text!r}: not one of {valid}")
    return mode, impl


def _from_mapping(value: Any) -> tuple[str, str] | None:
    if isinstance(value, dict) and isinstance(value.get("mode"), str):
        impl = value.get("impl") if isinstance(value.get("impl"), str) else "sdpa"
        if (value["mode"], impl) in MODES:
            return value["mode"], impl
    return None


def _read_cell_config(checkpoint: Path) -> tuple[dict, Path] | None:
    cfg_path = checkpoint.parent.parent / CELL_CONFIG
    if checkpoint.parent.name != "ckpt" or not cfg_path.is_file():
        return None
    try:
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return (cfg, cfg_path) if isinstance(cfg, dict) else None


def _cell_config(checkpoint: Path) -> tuple[tuple[str, str], Path] | None:
    cell = _read_cell_config(checkpoint)
    found = _from_mapping(cell[0].get("attention")) if cell else None
    return (found, cell[1]) if found else None


def prompt_format_for(checkpoint: Path) -> str | None:
    """The cell's ``data.prompt_format`` (hf-vlm: ``seed`` or ``chat_template``) from its
    config.yaml, which both sides must be prompted with; None where no cell config records one."""
    cell = _read_cell_config(checkpoint)
    data = cell[0].get("data") if cell else None
    found = data.get("prompt_format") if isinstance(data, dict) else None
    return found if isinstance(found, str) else None


def attention_for(flag: str | None, metadata: dict[str, Any], checkpoint: Path) -> Attention | None:
    """The mode to apply, and where it came from; None leaves the model's default (causal)."""
    if flag:
        return Attention(*parse_flag(flag), "--attention")
    found = _from_mapping(metadata.get("attention"))
    if found:
        return Attention(*found, "W&B artifact metadata")
    cell = _cell_config(checkpoint)
    if cell:
        return Attention(*cell[0], f"the cell's {cell[1]}")
    return None
