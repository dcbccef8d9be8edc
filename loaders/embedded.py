"""The harness's own base models (``harness:tiny-vlm``), rebuilt from a recorded ModelConfig.

The prefix is ``harness.contracts.checkpoint_meta.EMBEDDED_PREFIX`` (shared with the writer).

Shared by ``loaders.base`` (a ``base_model="harness:..."`` spec) and the ``harness`` format (the
``base_model`` / ``model_config`` / ``base_init_seed`` metadata of a harness checkpoint).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from loaders.errors import CorruptCheckpointError, MissingBaseModelError


def build_embedded(
    spec: str, model_config: str | None, path: Path, seed: str | None = None
) -> nn.Module:
    """Rebuild the harness's own model (``harness:tiny-vlm``) from the recorded ModelConfig.

    With ``seed`` (the file's ``base_init_seed``) the random init is reproduced exactly, without
    disturbing the caller's global RNG state.
    """
    try:
        from harness.contracts.config import ModelConfig
        from harness.models import build_model
    except ImportError as e:
        raise MissingBaseModelError(
            path, f"'{spec}' needs harness.models.build_model ({e})", "install the harness package"
        ) from e
    if model_config is None:
        raise MissingBaseModelError(
            path,
            f"'{spec}' needs the model_config metadata and the file has none",
            "re-save the checkpoint with the harness",
        )
    try:
        cfg = ModelConfig(**json.loads(model_config))
    except (TypeError, ValueError) as e:
        raise CorruptCheckpointError(
            path,
            f"model_config metadata is not a valid ModelConfig ({e})",
            "re-save the checkpoint",
        ) from e
    with torch.random.fork_rng(devices=[]):
        if seed not in (None, ""):
            try:
                torch.manual_seed(int(seed))
            except ValueError as e:
                raise CorruptCheckpointError(
                    path, f"base_init_seed metadata {seed!r} is not an integer", "re-save it"
                ) from e
        model, _tokenizer = build_model(cfg)
    return model
