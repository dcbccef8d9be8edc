"""One side of a comparison (``base`` or ``trained``): the model under test and what it scored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness.benchmark.cache import ResultCache, model_hash
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
    cache: ResultCache = field(default_factory=lambda: ResultCache(None))
    """Where its per-sample results are looked up first (``--no_cache``: nowhere)."""
    batch_size: int | str = 1
    """Completions generated per batch (``--batch_size``: N or ``auto``)."""
    content_hash: str | None = None
    """``cache.model_hash`` of the module, computed on first use (before the trained model is
    loaded onto the base, for the base)."""
    lm: TextLM | None = field(default=None, repr=False)

    def text(self) -> TextLM:
        """The model as a plain text LM (any causal LM the loaders return); one per model, so
        its call counts add up."""
        if self.lm is None:
            self.lm = TextLM(self.module, self.tokenizer, self.device)
        return self.lm

    def results(
        self, kind: str, inputs: list[dict[str, Any]], compute: Any, on_hits: Any = None
    ) -> list[dict]:
        """``cache.lookup`` under this model's content hash."""
        if self.cache.path is None:
            return compute(list(range(len(inputs))))
        if self.content_hash is None:
            self.content_hash = model_hash(self.module, self.tokenizer)
        return self.cache.lookup(self.content_hash, kind, inputs, compute, on_hits)


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


def probe_logits(model: EvalModel, ids: list[int]) -> torch.Tensor:
    """Last-position float32 logits of ``ids`` (the data probe), through the cache."""
    import base64

    def compute(idx: list[int]) -> list[dict]:
        logits = model.text().logits(ids)[-1].cpu().contiguous()
        return [{"float32": base64.b64encode(logits.numpy().tobytes()).decode()}]

    (got,) = model.results("probe", [{"ids": ids}], compute)
    raw = bytearray(base64.b64decode(got["float32"]))
    return torch.frombuffer(raw, dtype=torch.float32).clone()
