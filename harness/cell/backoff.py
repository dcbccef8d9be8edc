"""A cell with ``runtime.oom_backoff``: each attempt in a fresh process, until one fits.

The cell's own process (the one the runner started) runs no model: it forks one child per
attempt and waits for it. Attempt 1 runs the config as written; after an out-of-memory ending
the next listed step that can help (``harness/contracts/attempts.py``) gives the next attempt's
config, and the files of the attempt that ran out of memory move to ``attempts/<n>/``. A fresh
process gives every byte back (RLIMIT_DATA and the CUDA memory fraction are set in the child;
on CUDA the child also empties the allocator's cache when it runs out), so an attempt starts
from the same memory as the first. The child writes ``summary.json`` once, with ``effective``
(what it ran with) and ``attempts`` (every attempt so far); the last summary is the cell's.

The parent imports torch and the cell's modules once (each attempt then starts warm) but never
touches CUDA (a fork after CUDA initialisation would fail).
Signals reach the child through the process group (the runner and its executors signal the
group); the parent ignores them while a child runs and ends with the child's exit status.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from harness.contracts import schema, store_files
from harness.contracts.attempts import (
    ATTEMPTS_DIR,
    Attempt,
    effective_settings,
    next_config,
)
from harness.contracts.config import CellConfig, parse_cell_config, to_dict

PRELOAD = ("torch", "transformers", "peft", "harness.models", "harness.cell.train")
"""The heavy imports of an attempt (a subset of the warm server's ``PRELOAD``)."""
MOVED = (schema.SUMMARY_FILE, schema.METRICS_FILE, schema.PREDICTIONS_FILE, schema.CKPT_DIR)
"""Files of an attempt that ran out of memory, moved to ``attempts/<n>/`` before the next."""


def run_with_backoff(
    cfg: CellConfig,
    out: Path,
    cell_id: str,
    write_config: bool,
    run_cell: Callable[..., int],
    started: float,
) -> int:
    """Run ``cfg`` with back-off into ``out``, each attempt through ``run_cell``
    (``harness.cell.run``'s); ``started``: the cell's process start on the monotonic clock.
    Returns the last attempt's exit status."""
    out.mkdir(parents=True, exist_ok=True)
    if write_config:
        text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
        store_files.atomic_write_text(out / schema.CONFIG_FILE, text)
    _preload(cfg.runtime.threads)
    steps = list(cfg.runtime.oom_backoff)
    config = to_dict(cfg)
    config["runtime"]["oom_backoff"] = []  # the attempt itself does not back off
    attempts: list[Attempt] = []
    while True:
        run_config = _with_time_left(config, cfg.runtime.timeout_s, time.monotonic() - started)
        limit = cfg.runtime.timeout_s
        context = (steps, attempts, limit, started)
        before = _mtime(out / schema.SUMMARY_FILE)
        code = _fork_attempt(run_cell, run_config, out, cell_id, context)
        try:
            if _mtime(out / schema.SUMMARY_FILE) == before:
                raise schema.SchemaError("no new summary")
            summary = store_files.read_summary(out / schema.SUMMARY_FILE)
        except schema.SchemaError:
            return code  # the attempt died without a summary: the runner writes one
        attempts = [Attempt(**a) for a in summary.get("attempts") or []]
        if summary["outcome"] != "oom" or not attempts or attempts[-1].step_taken is None:
            return code
        phase = attempts[-1].oom_phase
        _set_aside(out, len(attempts))
        config = next_config(config, steps, phase)[0]  # type: ignore[index] - a step was taken
        print(
            f"cell {cell_id}: out of memory; retrying with {attempts[-1].step_taken}",
            file=sys.stderr,
        )


def _preload(threads: int | str | None) -> None:
    """Import what a cell needs once, here, so that every attempt starts warm (forked, like the
    runner's warm starts: ``harness/cell/forkserver.py``); CUDA stays untouched."""
    from harness.cell.threads import prepare_environment

    prepare_environment(threads)  # before torch loads its OpenMP runtime
    for name in PRELOAD:
        importlib.import_module(name)
    import torch

    if torch.cuda.is_initialized():
        raise RuntimeError(
            "runtime.oom_backoff forks each attempt, and this process has already initialised "
            "CUDA: run the cell in its own process (python -m harness.cell CELL.yaml --out DIR)"
        )


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _with_time_left(config: dict[str, Any], timeout_s: float | None, age_s: float) -> dict:
    """The attempt's config: ``runtime.timeout_s`` counts from the cell's start, not the fork."""
    if not timeout_s:
        return config
    run = {**config, "runtime": {**config["runtime"], "timeout_s": max(0.01, timeout_s - age_s)}}
    return run


def _fork_attempt(
    run_cell: Callable[..., int], config: dict[str, Any], out: Path, cell_id: str, context: tuple
) -> int:
    """Run one attempt in a forked child; its exit status (1 when it died by a signal).
    ``context``: the steps, the earlier attempts, the cell's time limit and start."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            cfg = parse_cell_config(config, "attempt")
            note = _annotator(config, *context)
            code = run_cell(cfg, out, cell_id, write_config=False, on_summary=note)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1


def _annotator(config, steps, earlier, timeout_s, started):
    """The child's hook on its summary: ``effective`` and ``attempts`` (this one added), and
    ``timings.wall_s`` of the whole cell (every attempt; each attempt's own is in its entry)."""

    def note(summary: schema.Summary) -> None:
        oom = summary.oom
        phase = oom.phase if oom else None
        step = None
        if summary.outcome == "oom":
            found = next_config(config, steps, phase)
            step = found[1] if found else None
        memory = summary.memory
        peak = None if phase == "setup" else getattr(memory, phase or "train", None) or memory.train
        this = Attempt(
            attempt=len(earlier) + 1,
            outcome=summary.outcome,
            settings=effective_settings(config),
            oom_phase=phase,
            in_use_bytes=oom.in_use_bytes if oom else None,
            peak_bytes=peak.peak_bytes if peak else None,
            budget_bytes=summary.memory.budget_bytes,
            step_taken=step,
            wall_s=summary.timings.wall_s,
        )
        summary.attempts = [*earlier, this]
        summary.timings.wall_s = time.monotonic() - started
        summary.effective = effective_settings(config)
        if summary.outcome == "timeout" and summary.error and timeout_s:
            summary.error.message = f"the cell ran past runtime.timeout_s={timeout_s}s"

    return note


def _set_aside(out: Path, n: int) -> None:
    """Move attempt ``n``'s files to ``attempts/<n>/`` (the next attempt starts clean)."""
    dest = out / ATTEMPTS_DIR / str(n)
    dest.mkdir(parents=True, exist_ok=True)
    for name in MOVED:
        src = out / name
        if src.exists():
            shutil.move(str(src), str(dest / name))
