"""VLM family adapters: one module per family, chosen by ``config.model_type`` from one list."""

from __future__ import annotations

from harness.models.families.base import Family
from harness.models.families.gemma3 import Gemma3
from harness.models.families.idefics3 import Idefics3, SmolVLM
from harness.models.families.llava import Llava
from harness.models.families.llava_next import LlavaNext
from harness.models.families.paligemma import PaliGemma
from harness.models.families.qwen2_vl import Qwen2VL, Qwen3VL, Qwen25VL

FAMILIES: list[Family] = [
    Llava(),
    LlavaNext(),
    Idefics3(),
    SmolVLM(),
    Qwen2VL(),
    Qwen25VL(),
    Qwen3VL(),
    PaliGemma(),
    Gemma3(),
]
"""Every supported family, in the order the README's table lists them."""


class CustomCode(Family):
    """A remote-code model (``model.trust_remote_code: true``) of no known family: the LLaVA-style
    defaults, which fit a model with the usual forward (ids with expanded image tokens, pixels)."""

    name = "custom"


def family_named(name: str) -> Family:
    """The family called ``name``; ValueError listing the valid names."""
    for family in FAMILIES:
        if family.name == name:
            return family
    raise ValueError(
        f"unknown VLM family {name!r}; choose one of: {', '.join(f.name for f in FAMILIES)}"
    )


def family_for(model_type: str) -> Family | None:
    """The family whose adapter handles ``config.model_type``, or None."""
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    return None


__all__ = ["FAMILIES", "CustomCode", "Family", "family_for", "family_named"]
