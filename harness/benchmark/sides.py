"""One side of a comparison (``base`` or ``trained``): the model under test and what it scored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness.benchmark.textlm import TextLM

Tick = Callable[[int], None]
"""Progress callback: ``tick(n)`` after n more samples are done."""


def no_tick(n: int) -> None:
    """A progress callback that shows nothing."""


@dataclass
class EvalModel:
    """A loaded model ready to evaluate: module (eval mode, on ``device``) and its tokenizer."""

    label: str
    module: nn.Module
    tokenizer: Any
    device: torch.device
    tokenizer_source: str = ""

    def text(self) -> TextLM:
        """The model as a plain text LM (any causal LM the loaders return)."""
        return TextLM(self.module, self.tokenizer, self.device)


@dataclass
class SideResult:
    """What one model scored: aggregate metrics and one record per sample id (file order)."""

    label: str
    metrics: dict[str, Any]
    samples: dict[str, dict[str, Any]]
    first_logits: torch.Tensor | None = field(default=None, repr=False)
    """Last-position logits of the first sample's prompt (the data probe; not serialised)."""
    probe_s: float = 0.0
    """Seconds spent computing ``first_logits`` (one forward pass)."""
    elapsed_s: float = 0.0
    """Evaluation wall time, ``probe_s`` excluded."""
