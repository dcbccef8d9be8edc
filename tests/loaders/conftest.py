"""Fixtures for the loader tests: a tiny base model saved into tmp (never a hub id)."""

from __future__ import annotations

from pathlib import Path

import pytest
from loader_fixtures import tiny_model
from transformers import LlamaForCausalLM


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory) -> Path:
    """A saved tiny Llama to act as the base model (local path, never a hub id)."""
    d = tmp_path_factory.mktemp("base") / "tiny-llama"
    tiny_model(0).save_pretrained(d)
    return d


@pytest.fixture()
def base_model(base_dir) -> LlamaForCausalLM:
    return LlamaForCausalLM.from_pretrained(base_dir).eval()
