"""Options and shared state of one ``load_checkpoint`` call, handed to every format module."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from loaders import probe
from loaders.errors import InvalidOptionError
from loaders.load_report import LoadReport

ROUTING_MODES = ("top1", "dense")


@dataclass
class LoadContext:
    """What the caller asked for, plus the report every step writes into."""

    source: Path
    report: LoadReport
    base_model: str | Path | nn.Module | None = None
    """Local path, hub id, or an already built module (it is modified in place)."""
    lora_alpha: float | None = None
    """Alpha for LoRA files that do not record it."""
    lora_rank: int | None = None
    """Expected LoRA rank; a file with another rank is refused."""
    expert: int | None = None
    """DyLoRA-MoE: pin this expert and merge it into a plain model."""
    routing: str = "top1"
    """DyLoRA-MoE routing at inference: ``top1`` (original) or ``dense`` softmax."""
    temperature: float = 2.0
    """DyLoRA-MoE dense-routing softmax temperature."""
    merge: bool = False
    """PEFT adapters: merge into the base weights and return the plain model."""
    strict: bool = False
    """Fail on any missing trained key instead of reporting it."""
    device: str | torch.device | None = None
    dtype: str | torch.dtype | None = None
    allow_remote_code: bool = False
    run_probe: bool = True
    """Compute the before/after logit check (one forward pass each)."""
    extra_tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    _probe_inputs: dict[str, torch.Tensor] | None = None
    _before: torch.Tensor | None = None

    def torch_dtype(self) -> torch.dtype | None:
        """``dtype`` as a ``torch.dtype`` (accepts ``"bfloat16"``, ``"bf16"``, ``torch.float16``...)."""
        if self.dtype is None or isinstance(self.dtype, torch.dtype):
            return self.dtype
        aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}
        name = aliases.get(str(self.dtype), str(self.dtype)).removeprefix("torch.")
        dt = getattr(torch, name, None)
        if not isinstance(dt, torch.dtype):
            raise InvalidOptionError(
                self.source, f"unknown dtype {self.dtype!r}", "use float32, bfloat16 or float16"
            )
        return dt

    def place(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the requested device/dtype (no-op when neither was asked for).

        Done before each probe, so the probe sees the model exactly as it is returned and the
        before/after logits differ only by the checkpoint, not by a dtype cast.
        """
        dt = self.torch_dtype()
        if dt is not None or self.device is not None:
            model.to(device=self.device, dtype=dt)
        return model

    def probe_before(self, model: nn.Module, low: int = 0) -> None:
        """Record the probe logits of the model before the checkpoint is applied."""
        if not self.run_probe:
            return
        self.place(model)
        self._probe_inputs = probe.probe_inputs(model, low=low)
        self._before = probe.logits(model, self._probe_inputs)

    def probe_after(self, model: nn.Module) -> None:
        """Compare with the recorded logits and store the verdict in the report."""
        if not self.run_probe:
            return
        inputs = self._probe_inputs
        if inputs is None:  # nothing to compare against: say so instead of running the model
            self.report.probe = probe.not_compared()
            return
        after = probe.logits(model, inputs)
        self.report.probe = probe.compare(self._before, after, inputs)

    def hp(self, **values: Any) -> None:
        """Record inferred hyperparameters."""
        self.report.hyperparameters.update(values)

    def note(self, text: str) -> None:
        """A fact about the load worth telling the user."""
        self.report.notes.append(text)

    def warn(self, text: str) -> None:
        """Something the user must look at (also logged)."""
        import logging

        logging.getLogger("loaders").warning(text)
        self.report.warnings.append(text)
