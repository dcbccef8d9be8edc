"""Out-of-memory back-off: its steps, the settings a cell actually ran with, and its attempts.

``runtime.oom_backoff`` lists steps, tried in order after an out-of-memory ending (each retry
in a fresh process, ``harness/cell/backoff.py``):

- ``micro_batch``: halve ``train.micro_batch`` and double ``train.grad_accum`` (an OOM in
  training). The samples per optimizer step, the loss scaling (the mean over the step's answer
  tokens) and the step budget stay the same; down to micro-batch 1.
- ``gradient_checkpointing``: turn ``train.gradient_checkpointing`` on (an OOM in training).
- ``eval_batch``: halve ``eval.batch_size`` (an OOM in evaluation, validation included); down to 1.

The cell id stays the hash of the config the user wrote; ``summary.effective`` records the
settings the result was produced with and ``summary.attempts`` every attempt (``Attempt``).
Torch-free: the cell, the runner and the reports read it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal, get_args

BackoffStep = Literal["micro_batch", "gradient_checkpointing", "eval_batch"]
BACKOFF_STEPS: tuple[str, ...] = get_args(BackoffStep)
"""The steps ``runtime.oom_backoff`` may list."""

TRAIN_STEPS = ("micro_batch", "gradient_checkpointing")
"""Steps that help an out-of-memory in training; ``eval_batch`` helps one in evaluation."""

EFFECTIVE_KEYS: tuple[tuple[str, str], ...] = (
    ("train", "micro_batch"),
    ("train", "grad_accum"),
    ("train", "gradient_checkpointing"),
    ("eval", "batch_size"),
)
"""(section, key) of the settings back-off may change: ``summary.effective``."""

ATTEMPTS_DIR = "attempts"
"""``<cell>/attempts/<n>/``: the files of attempt ``n`` that ran out of memory."""


@dataclass
class Attempt:
    """One attempt of a cell with ``runtime.oom_backoff`` (``summary.attempts``)."""

    attempt: int
    """1-based: attempt 1 ran the config as written."""
    outcome: str
    """The attempt's own outcome (``oom`` for every one but the last)."""
    settings: dict[str, Any]
    """The ``EFFECTIVE_KEYS`` it ran with (``train.micro_batch``: 4, ...)."""
    oom_phase: str | None = None
    """Where it ran out of memory: ``setup``, ``train`` or ``eval`` (validation included)."""
    in_use_bytes: int | None = None
    """Memory in use when the allocation failed."""
    peak_bytes: int | None = None
    """Peak memory of the phase (the last attempt: of training)."""
    budget_bytes: int | None = None
    """The enforced budget (``runtime.memory_budget_gb``)."""
    step_taken: str | None = None
    """The back-off step taken after it (``micro_batch 4 -> 2``), None for the last attempt."""
    wall_s: float | None = None
    """Seconds from its process start to its summary."""


def effective_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ``EFFECTIVE_KEYS`` of a plain config as dotted keys."""
    return {f"{s}.{k}": (config.get(s) or {}).get(k) for s, k in EFFECTIVE_KEYS}


def next_config(
    config: dict[str, Any], steps: list[str], phase: str | None
) -> tuple[dict[str, Any], str] | None:
    """The config of the next attempt after an OOM in ``phase`` and the step taken, or None when
    no listed step can still help (micro-batch at 1, checkpointing on, eval batch at 1, a step
    for the other phase, or an OOM in ``setup``: loading the model, which no step shrinks)."""
    if phase == "setup":
        return None
    train, ev = config["train"], config["eval"]
    for step in steps:
        new = copy.deepcopy(config)
        if phase == "eval":
            if step == "eval_batch" and ev["batch_size"] > 1:
                new["eval"]["batch_size"] = ev["batch_size"] // 2
                return new, f"eval_batch {ev['batch_size']} -> {new['eval']['batch_size']}"
            continue
        if step == "micro_batch" and train["micro_batch"] > 1:
            mb = train["micro_batch"]
            half = mb // 2
            # an odd micro-batch cannot halve exactly: keep the samples per step by going to 1
            half = half if mb % 2 == 0 else 1
            new["train"]["micro_batch"] = half
            new["train"]["grad_accum"] = train["grad_accum"] * (mb // half)
            return new, f"micro_batch {mb} -> {half}"
        if step == "gradient_checkpointing" and not train.get("gradient_checkpointing"):
            new["train"]["gradient_checkpointing"] = True
            return new, "gradient_checkpointing on"
    return None


def can_back_off(config: dict[str, Any], phase: str | None) -> bool:
    """Whether ``runtime.oom_backoff`` has a step left for an OOM in ``phase``."""
    steps = list((config.get("runtime") or {}).get("oom_backoff") or [])
    return bool(steps) and next_config(config, steps, phase) is not None


def substitution(summary: dict[str, Any]) -> str | None:
    """What back-off changed, as shown beside the outcome: ``micro_batch 4 -> 1 after OOM``,
    ``micro_batch 8 -> 1, gradient_checkpointing on after OOM``; None when it changed nothing."""
    attempts = summary.get("attempts") or []
    if len(attempts) < 2:
        return None
    first, last = attempts[0].get("settings") or {}, attempts[-1].get("settings") or {}
    parts = []
    for key, name in (
        ("train.micro_batch", "micro_batch"),
        ("train.gradient_checkpointing", "gradient_checkpointing"),
        ("eval.batch_size", "eval_batch"),
    ):
        before, after = first.get(key), last.get(key)
        if before == after:
            continue
        parts.append(f"{name} on" if after is True else f"{name} {before} -> {after}")
    if not parts:
        return None
    return f"{', '.join(parts)} after OOM"


def backoff_exhausted(summary: dict[str, Any]) -> str | None:
    """For an ``oom`` cell that backed off: ``after 4 attempts (micro_batch 8 -> 1, ...)``."""
    attempts = summary.get("attempts") or []
    if summary.get("outcome") != "oom" or len(attempts) < 2:
        return None
    steps = [a.get("step_taken") for a in attempts if a.get("step_taken")]
    return f"after {len(attempts)} attempts ({', '.join(steps)})"


def effective_difference(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The ``summary.effective`` keys whose values differ between two summaries (a summary
    without ``effective`` ran with its config: pass ``effective_settings`` of it instead)."""
    ea, eb = a.get("effective") or {}, b.get("effective") or {}
    return [k for k in sorted(set(ea) | set(eb)) if ea.get(k) != eb.get(k)]
