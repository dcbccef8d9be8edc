"""Helpers of the VLM family tests."""

from __future__ import annotations

from harness.contracts.config import ModelConfig
from harness.models.hf_vlm import HFVisionLM, build_hf_vlm


def load(path) -> HFVisionLM:
    """A fresh model from a tiny folder (fp32, causal/sdpa)."""
    model = build_hf_vlm(ModelConfig(name="hf-vlm", path=str(path)))
    model.set_attention("causal", "sdpa")
    return model
