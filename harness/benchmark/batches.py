"""Generating many completions in batches: ``--batch_size N`` or ``auto`` (start at
``generation.AUTO_START``, halve on out-of-memory and retry, down to one)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from harness.benchmark.generation import AUTO, GenerationSettings, first_size
from harness.benchmark.textlm import Completion, TextLM


def is_oom(exc: BaseException) -> bool:
    """Out of memory on the GPU (``torch.OutOfMemoryError``) or the CPU allocator."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def generate_many(
    lm: TextLM,
    prompts: list[list[int]],
    seeds: list[int],
    settings: GenerationSettings,
    batch_size: int | str,
    done: Callable[[list[int]], None] = lambda rows: None,
) -> list[Completion]:
    """A completion of every prompt, longest prompts first, ``batch_size`` at a time; each
    batch's rows are passed to ``done`` once generated. ``auto`` halves the size on OOM."""
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    out: list[Completion | None] = [None] * len(prompts)
    size, lo = first_size(batch_size), 0
    while lo < len(order):
        rows = order[lo : lo + size]
        try:
            got = lm.generate_batch([prompts[i] for i in rows], settings, [seeds[i] for i in rows])
        except (RuntimeError, MemoryError) as exc:
            if batch_size != AUTO or size == 1 or not is_oom(exc):
                raise
            size = len(rows) // 2
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        for i, c in zip(rows, got, strict=True):
            out[i] = c
        lo += len(rows)
        done(rows)
    return [c for c in out if c is not None]
