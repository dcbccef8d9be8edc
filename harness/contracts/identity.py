"""A cell's identity: the content hash of its resolved config, stable across added keys."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from harness.contracts.config import CellConfig, to_dict

ADDED_KEYS: tuple[tuple[str, str, Any], ...] = (
    ("data", "prompt_format", "seed"),
    ("data", "style", "harness"),
    ("data", "test_style", None),
    ("model", "stem_stages", 3),
    ("model", "input_norm", "fixed"),
)
"""Keys added after run stores existed, with the value that does what every cell did before the
key existed: left out of the hash at that value, so old stores keep their cell ids and resume."""
UNHASHED_KEYS: tuple[tuple[str, str], ...] = (
    ("checkpoint", "resume_every"),
    ("runtime", "oom_backoff"),
    ("runtime", "skip_predicted_oom"),
)
"""Keys that say how to run a cell, not what it learns: left out of the hash at every value.
``checkpoint.resume_every`` changes how often a cell saves its progress, never a result (a resumed
cell ends bit-identical to an uninterrupted one, on CPU: tests/runner/test_resume_kill.py), so a
store run with another cadence keeps its ids. Back-off keeps the experiment (the summary records
what it ran with), so turning it on keeps every cell id and ``--rerun oom`` retries the stored OOM
cells with it."""


def identity_view(data: dict[str, Any]) -> dict[str, Any]:
    """What a cell's id hashes: the resolved config with each ``ADDED_KEYS`` entry left out at its
    old meaning, each ``UNHASHED_KEYS`` entry left out, and ``model.freeze_vision`` as it takes effect (unset was ``false`` before hf-vlm
    froze its tower by default: a tiny-vlm cell keeps its id, an hf-vlm cell that now freezes
    gets a new one)."""
    view = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for section, key, old in ADDED_KEYS:
        if isinstance(view.get(section), dict) and view[section].get(key, old) == old:
            view[section].pop(key, None)
    for section, key in UNHASHED_KEYS:
        if isinstance(view.get(section), dict):
            view[section].pop(key, None)
    model = view.get("model")
    if isinstance(model, dict) and "freeze_vision" in model and model["freeze_vision"] is None:
        model["freeze_vision"] = model.get("name") == "hf-vlm"
    return view


def config_hash(cfg: CellConfig | dict[str, Any], length: int = 12) -> str:
    """Content hash of a resolved config (``identity_view``): the cell's identity."""
    data = identity_view(to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
