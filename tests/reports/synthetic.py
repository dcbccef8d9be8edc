"""Write synthetic cells in the run-store format of ``harness/contracts/schema.py`` (tests and benchmarks).

Everything is derived from the arguments (no randomness), so a synthetic store renders to the
same bytes every time.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.contracts.config import CellConfig, to_dict
from harness.contracts.keys import set_dotted
from harness.contracts.schema import (
    CELL_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    SUMMARY_FILE,
    Summary,
)
from harness.contracts.store_files import write_json

GIB = 2**30
PROVENANCE = {
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
    "git_dirty": False,
    "python": "3.11.9",
    "torch": "2.13.0",
    "cuda": None,
    "transformers": "5.20.0",
    "peft": "0.18.0",
    "packages": {"numpy": "2.4.6", "safetensors": "0.5.0"},
    "device_name": "cpu",
    "hostname": "test-host",
    "started_at": "2025-01-01T00:00:00Z",
    "finished_at": "2025-01-01T00:05:00Z",
}


def answer(i: int, digits: int = 6) -> str:
    """The i-th synthetic captcha answer."""
    return f"{(i * 7919 + 12345) % 10**digits:0{digits}d}"


def wrong(text: str, i: int) -> tuple[str, int]:
    """A deterministic wrong reading of ``text``: 1, 2 or 3 digits changed by sample index."""
    chars = list(text)
    changes = 1 + (i % 3 == 0) + (i % 7 == 0)
    for j in range(changes):
        pos = (i + 2 * j) % len(chars)
        chars[pos] = str((int(chars[pos]) + 1) % 10)
    return "".join(chars), changes


def predictions(correct: Sequence[bool], prefix: str = "test") -> list[dict[str, Any]]:
    """predictions.jsonl records for samples ``prefix-0000...`` with the given correctness."""
    out = []
    for i, ok in enumerate(correct):
        truth = answer(i)
        pred, dist = (truth, 0) if ok else wrong(truth, i)
        out.append(
            {
                "id": f"{prefix}-{i:04d}",
                "answer": truth,
                "prediction": pred,
                "correct": bool(ok),
                "edit_distance": dist,
            }
        )
    return out


def pattern(k: int, n: int, salt: str = "") -> list[bool]:
    """n flags with exactly k True, spread deterministically (salt shifts which ones)."""
    shift = zlib.crc32(salt.encode()) % max(n, 1)
    order = sorted(range(n), key=lambda i: ((i * 37 + shift) % n, i))
    chosen = set(order[:k])
    return [i in chosen for i in range(n)]


def _train_records(steps: int, first_loss: float, last_loss: float) -> list[dict[str, Any]]:
    out = []
    for s in range(1, steps + 1):
        frac = (s - 1) / max(steps - 1, 1)
        out.append(
            {
                "kind": "train",
                "step": s,
                "loss": round(first_loss + (last_loss - first_loss) * frac**0.5, 4),
                "token_accuracy": round(0.3 + 0.6 * frac, 4),
                "lr": 1e-3,
                "tokens_per_s": 1000.0,
                "elapsed_s": round(0.1 * s, 3),
            }
        )
    return out


def _summary(
    cell_id: str,
    outcome: str,
    correct: Sequence[bool] | None,
    steps: int,
    peak_train: int | None,
    budget: int | None,
    seed: int,
    planned: dict[str, Any],
    scoring: dict[str, Any] | None,
) -> Summary:
    s = Summary(outcome=outcome, cell_id=cell_id, seed=seed, provenance=dict(PROVENANCE))
    s.memory = {
        "kind": "cpu_rss",
        "device": "cpu",
        "budget_bytes": budget,
        "baseline_bytes": GIB // 4,
        "train": {"peak_bytes": peak_train, "reserved_bytes": None},
        "eval": {"peak_bytes": peak_train, "reserved_bytes": None},
    }
    s.timings = {"setup_s": 1.0, "train_s": 0.1 * steps, "eval_s": 0.5, "wall_s": 1.5 + 0.1 * steps}
    if outcome != "oom":
        s.train = {
            "steps": steps,
            "first_loss": 3.8,
            "last_loss": 1.3,
            "first_token_accuracy": 0.3,
            "last_token_accuracy": 0.9,
            "steps_per_s": 10.0,
            "tokens_per_s": 1000.0,
            "samples_seen": steps * 8,
            **planned,
        }
    if correct is not None:
        k, n = sum(correct), len(correct)
        s.metrics = {
            "exact_match_k": k,
            "n": n,
            "exact_match": k / n,
            "token_accuracy": 0.8,
            "cer": round(1 - 0.8, 3),
            "best_step": steps,
            "best_val": k / n,
            "final_loss": 1.3,
            **(scoring or {}),
        }
    return s


def write_cell(
    store_dir: str | Path,
    cell_id: str,
    axes: dict[str, Any],
    *,
    correct: Sequence[bool] | None = None,
    outcome: str = "completed",
    repeat: int = 0,
    matrix: str = "demo",
    steps: int = 20,
    peak_train: int | None = GIB,
    budget: int | None = 2 * GIB,
    error: dict[str, Any] | None = None,
    oom: dict[str, Any] | None = None,
    finished: bool = True,
    cell_json: bool = True,
    settings: dict[str, Any] | None = None,
    planned_steps: int | None = None,
    stop_reason: str | None = "budget",
    legacy: bool = False,
    scoring: dict[str, Any] | None = None,
) -> Path:
    """One cell directory: config.yaml, cell.json, metrics.jsonl, predictions.jsonl, summary.json.

    ``axes`` go into the config and cell.json; ``settings`` (dotted keys) only into the config.
    ``train.max_steps`` is ``planned_steps`` (default: ``steps``, the full budget); a cell that
    trained fewer ``steps`` records ``stop_reason``. ``legacy`` leaves out ``steps_planned`` and
    ``stop_reason`` (stores written before they existed); ``scoring`` adds ``metrics`` keys
    (``test_is_val``, ``scored_weights``).
    """
    path = Path(store_dir) / cell_id
    path.mkdir(parents=True, exist_ok=True)
    config = to_dict(CellConfig())
    planned = planned_steps if planned_steps is not None else steps
    for key, value in {"train.max_steps": planned, **(settings or {}), **axes}.items():
        set_dotted(config, key, value)
    (path / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
    if cell_json:
        write_json(
            path / CELL_FILE, {"cell_id": cell_id, "matrix": matrix, "axes": axes, "repeat": repeat}
        )
    trained = outcome not in ("oom",) or (oom or {}).get("phase") == "eval"
    records = _train_records(steps, 3.8, 1.3) if trained else []
    (path / METRICS_FILE).write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    if correct is not None and outcome == "completed":
        lines = "".join(json.dumps(p, sort_keys=True) + "\n" for p in predictions(correct))
        (path / PREDICTIONS_FILE).write_text(lines, encoding="utf-8")
    if not finished:
        return path
    summary = _summary(
        cell_id,
        outcome,
        correct if outcome == "completed" else None,
        steps,
        peak_train if outcome != "oom" else None,
        budget,
        int(config["seed"]),
        {} if legacy else {"steps_planned": planned, "stop_reason": stop_reason},
        scoring,
    )
    summary.oom, summary.error = oom, error
    write_json(path / SUMMARY_FILE, summary)
    return path


def write_sweep_store(
    store_dir: str | Path, *, repeats: int = 4, n: int = 100, steps: int = 50
) -> Path:
    """A full-factorial store: 2 x 5 x 5 x 5 configurations x ``repeats`` (1,000 cells at 4).

    Every 50th cell runs out of memory; exact match depends on the configuration, so some
    comparisons are significant and some are not.
    """
    import itertools

    grid = itertools.product(
        ["causal", "prefix_bidirectional"],
        [1, 2, 4, 8, 16],
        [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
        [64, 128, 256, 512, 1024],
    )
    i = 0
    for mode, accum, lr, width in grid:
        for rep in range(repeats):
            cell_id = f"cell{i:04d}"
            axes = {
                "attention.mode": mode,
                "train.grad_accum": accum,
                "train.lr": lr,
                "model.hidden_size": width,
                "seed": rep,
            }
            i += 1
            if i % 50 == 0:
                write_cell(
                    store_dir,
                    cell_id,
                    axes,
                    repeat=rep,
                    outcome="oom",
                    matrix="sweep",
                    oom={
                        "phase": "train",
                        "in_use_bytes": 2 * GIB,
                        "budget_bytes": 2 * GIB,
                        "message": "out of memory",
                    },
                )
                continue
            k = min(
                n,
                10 + 8 * [64, 128, 256, 512, 1024].index(width) + 3 * rep + (mode == "causal") * 5,
            )
            write_cell(
                store_dir,
                cell_id,
                axes,
                repeat=rep,
                matrix="sweep",
                steps=steps,
                correct=pattern(k, n, cell_id),
                peak_train=GIB // 2 + width * 2**20,
            )
    return Path(store_dir)


ATTENTION_OPTIONS = (
    {"attention.mode": "causal", "attention.impl": "sdpa"},
    {"attention.mode": "prefix_bidirectional", "attention.impl": "sdpa"},
    {"attention.mode": "prefix_bidirectional", "attention.impl": "eager_dense"},
)
"""The demo's paired `attention` axis: the last two options are an A/A pair (same mask)."""


def write_attention_store(
    store_dir: str | Path, scores: Sequence[Sequence[int]], n: int = 500
) -> Path:
    """A store shaped like ``experiments/attention.yaml``: ``scores[i][s]`` samples of ``n``
    right for option i of ``ATTENTION_OPTIONS`` at seed s (matched by repeat index; one seed: no
    seed axis), with ``matrix.json`` as the runner writes it (the paired `attention` axis)."""
    store = Path(store_dir)
    seeds = len(scores[0])
    for i, (option, per_seed) in enumerate(zip(ATTENTION_OPTIONS, scores, strict=True)):
        for seed, k in enumerate(per_seed):
            axes = {**option, **({"seed": seed} if seeds > 1 else {})}
            cell_id = f"o{i}s{seed}"
            write_cell(
                store,
                cell_id,
                axes,
                correct=pattern(k, n, cell_id),
                repeat=seed,
                matrix="attention",
                settings={"seed": seed},
            )
    meta = {
        "name": "attention",
        "axes": {"attention": [dict(o) for o in ATTENTION_OPTIONS]},
        "paired": {"attention": ["attention.mode", "attention.impl"]},
    }
    write_json(store / "matrix.json", meta)
    return store
