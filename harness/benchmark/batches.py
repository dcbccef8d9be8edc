"""Generating many completions in batches: ``--batch_size N`` or ``auto`` (start at
``generation.AUTO_START``, halve on out-of-memory and retry, down to one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

from harness.benchmark.generation import AUTO, GenerationSettings, first_size
from harness.benchmark.textlm import Completion, TextLM

T = TypeVar("T")


def is_oom(exc: BaseException) -> bool:
    """Out of memory on the GPU (``torch.OutOfMemoryError``) or the CPU allocator."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def in_batches(
    sizes: list[int],
    batch_size: int | str,
    run: Callable[[list[int]], list[T]],
    done: Callable[[list[int]], None] = lambda rows: None,
) -> list[T]:
    """``run`` over the items (largest ``sizes`` first), ``batch_size`` at a time, results in
    the items' order; each batch's items are passed to ``done``. ``auto`` halves on OOM."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    out: dict[int, T] = {}
    size, lo = first_size(batch_size), 0
    while lo < len(order):
        rows = order[lo : lo + size]
        try:
            got = run(rows)
        except (RuntimeError, MemoryError) as exc:
            if batch_size != AUTO or len(rows) == 1 or not is_oom(exc):
                raise
            size = len(rows) // 2
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        out |= dict(zip(rows, got, strict=True))
        lo += len(rows)
        done(rows)
    return [out[i] for i in range(len(sizes))]


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

    def run(rows: list[int]) -> list[Completion]:
        return lm.generate_batch([prompts[i] for i in rows], settings, [seeds[i] for i in rows])

    return in_batches([len(p) for p in prompts], batch_size, run, done)


def score_many(
    lm: TextLM,
    pairs: list[tuple[list[int], list[int]]],
    batch_size: int | str,
    done: Callable[[list[int]], None] = lambda rows: None,
) -> list[tuple[float, int, int]]:
    """``TextLM.score_batch`` of every ``(input, target)`` pair, in batches as above."""

    def run(rows: list[int]) -> list[tuple[float, int, int]]:
        return lm.score_batch([pairs[i] for i in rows])

    return in_batches([len(p[0]) for p in pairs], batch_size, run, done)
