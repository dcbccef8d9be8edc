"""The device a cell runs on: whether it can be used, torch's device, autocast, and what to record.

Everything here imports torch lazily; the runner asks ``device_problem`` through a child process
(``harness/runner/preflight.py``) so that it never imports torch itself.
"""

from __future__ import annotations

import platform
from contextlib import nullcontext
from typing import Any

from harness.contracts.config import CellConfig, ConfigError
from harness.contracts.provenance import cpu_name


def device_problem(device: str) -> str | None:
    """Why ``runtime.device`` cannot be used on this machine, in one line (None when it can).
    Imports torch: the runner asks through a child process (``harness/runner/preflight.py``)."""
    if device != "cuda":
        return None
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only torch build" if torch.version.cuda is None else "no visible GPU"
        return (
            f"`runtime.device: cuda` but this machine has no usable CUDA device ({build}); "
            "use `runtime.device: auto` (cuda when there is one) or `cpu`"
        )
    return None


def resolve_device(name: str):
    import torch

    problem = device_problem(name)
    if problem:  # main() refuses this before anything runs; run_cell called directly gets here
        raise ConfigError([problem], "runtime.device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def precision_context(cfg: CellConfig, device):
    """Autocast context factory and (fp16 only) a GradScaler."""
    import torch

    prec = cfg.train.precision
    if prec == "auto":
        prec = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if prec == "fp32":
        return nullcontext, None
    dtype = torch.bfloat16 if prec == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if prec == "fp16" and device.type == "cuda" else None
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler


def torch_info() -> dict[str, Any]:
    """torch version, CUDA version (None on CPU builds) and the device that would be used."""
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda}
    if torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(0)
    else:
        info["device_name"] = cpu_name() or platform.processor() or platform.machine() or "cpu"
    return info
