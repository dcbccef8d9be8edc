"""Shared test settings: offline, single-threaded torch, W&B and HF caches inside tmp."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Keep every cache a library might write to inside the test's temp directory."""
    root = tmp_path_factory.mktemp("env")
    for var in (
        "WANDB_DIR",
        "WANDB_CACHE_DIR",
        "WANDB_DATA_DIR",
        "WANDB_CONFIG_DIR",
        "WANDB_ARTIFACT_DIR",
        "HF_HOME",
        "MPLCONFIGDIR",
    ):
        monkeypatch.setenv(var, str(root / var.lower()))
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    yield
