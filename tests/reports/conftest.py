"""Tiny run stores built in the test, in the exact format of harness/contracts/schema.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reports.synthetic import GIB, pattern, write_cell


def build_small_store(root: Path) -> Path:
    """The golden store: the seed's attention comparison plus every outcome and a repeat."""
    store = root / "attention"
    a = {"attention.mode": "causal", "train.grad_accum": 8}
    b = {"attention.mode": "prefix_bidirectional", "train.grad_accum": 8}
    write_cell(
        store, "c-causal-8", {**a, "seed": 0}, correct=pattern(18, 40, "x"), matrix="attention"
    )
    write_cell(
        store,
        "c-causal-8-r1",
        {**a, "seed": 1},
        repeat=1,
        correct=pattern(16, 40, "y"),
        matrix="attention",
    )
    write_cell(
        store,
        "c-bidir-8",
        {**b, "seed": 0},
        correct=pattern(30, 40, "z"),
        matrix="attention",
        peak_train=int(1.8 * GIB),
    )
    write_cell(
        store,
        "c-bidir-8-r1",
        {**b, "seed": 1},
        repeat=1,
        matrix="attention",
        outcome="oom",
        oom={
            "phase": "train",
            "in_use_bytes": int(1.9 * GIB),
            "budget_bytes": 2 * GIB,
            "message": "CUDA out of memory.",
        },
    )
    write_cell(
        store,
        "c-causal-4",
        {"attention.mode": "causal", "train.grad_accum": 4, "seed": 0},
        outcome="failed",
        matrix="attention",
        error={"type": "RuntimeError", "message": "boom | bad\nsecond line", "phase": "train"},
    )
    write_cell(
        store,
        "c-bidir-4",
        {"attention.mode": "prefix_bidirectional", "train.grad_accum": 4, "seed": 0},
        settings={"runtime.timeout_s": 10.0},
        outcome="timeout",
        matrix="attention",
        error={"type": "timeout", "message": "cell exceeded its time limit", "phase": "train"},
    )
    write_cell(
        store,
        "c-causal-2",
        {"attention.mode": "causal", "train.grad_accum": 2, "seed": 0},
        outcome="interrupted",
        matrix="attention",
        error={"type": "signal", "message": "SIGINT", "phase": "train"},
    )
    write_cell(
        store,
        "c-bidir-2",
        {"attention.mode": "prefix_bidirectional", "train.grad_accum": 2, "seed": 0},
        matrix="attention",
        finished=False,
    )
    return store


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    return build_small_store(tmp_path)


def two_cell_store(
    root: Path, k_a: int, k_b: int, n: int, axes_b: dict | None = None, paired: bool = True
) -> Path:
    """Two completed cells that differ in `attention.mode` (and whatever ``axes_b`` adds)."""
    store = root / "pair"
    a = {"attention.mode": "causal", "train.grad_accum": 8}
    b = {**a, "attention.mode": "prefix_bidirectional", **(axes_b or {})}
    write_cell(store, "a", a, correct=pattern(k_a, n, "a"))
    write_cell(store, "b", b, correct=pattern(k_b, n, "b"))
    if not paired:
        (store / "b" / "predictions.jsonl").unlink()
    return store
