"""The run store's file formats, documented in one place.

A matrix directory ``runs/<matrix>/`` holds ``matrix.json`` (written by the runner: ``name``,
``description``, ``source`` file, ``axes``: dotted key -> values in matrix order), ``.locks/``
(one flock file per cell), the report (``EXPERIMENTS.md`` + ``EXPERIMENTS_plots/``) and one
directory per cell. A cell directory ``runs/<matrix>/<cell-id>/`` holds:

- ``config.yaml``      the resolved CellConfig (plain data, every field present).
- ``cell.json``        written by the runner before the cell starts: cell id, matrix name, the
                       varying axes of this cell (dotted key -> value), repeat index.
- ``metrics.jsonl``    one JSON object per line, appended while the cell runs (``TrainRecord`` and
                       ``EvalRecord`` below, told apart by ``kind``).
- ``predictions.jsonl`` one ``Prediction`` per held-out sample, from the reported evaluation.
- ``summary.json``     one ``Summary``: written atomically (temp file + rename) exactly once, when the
                       cell ends with any outcome. Its presence means the cell is finished. The
                       runner then merges in ``matrix``, ``axes`` and ``repeat`` (from cell.json)
                       and ``timings.runner_wall_s``; when the cell could not write a summary (a
                       crash, a signal, a time limit, Ctrl-C) the runner writes it, with
                       ``error.log_tail``. Outcome ``oom`` without ``oom.in_use_bytes`` means the
                       process was SIGKILLed while a memory budget was set (the kernel OOM killer).
- ``cell.log.<n>``, ``summary.json.<n>``  a previous attempt's log and summary, kept when a cell
                       runs again (resume after a kill, ``--rerun``).
- ``ckpt/``            ``best.safetensors`` / ``final.safetensors`` (+ ``peft/`` for LoRA runs).
- ``cell.log``         the cell process's stdout and stderr.

Every record is plain JSON; ``SCHEMA_VERSION`` is bumped on any incompatible change.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 1

CONFIG_FILE = "config.yaml"
CELL_FILE = "cell.json"
METRICS_FILE = "metrics.jsonl"
PREDICTIONS_FILE = "predictions.jsonl"
SUMMARY_FILE = "summary.json"
CKPT_DIR = "ckpt"
LOG_FILE = "cell.log"

Outcome = Literal["completed", "oom", "timeout", "diverged", "failed", "interrupted"]
OUTCOMES: tuple[str, ...] = ("completed", "oom", "timeout", "diverged", "failed", "interrupted")


@dataclass
class TrainRecord:
    """One line of metrics.jsonl per ``train.log_every`` optimizer steps."""

    step: int
    """Optimizer step (1-based)."""
    loss: float
    """Mean answer-token cross-entropy over the step's micro-batches (unscaled by grad_accum)."""
    token_accuracy: float
    """argmax == label over the step's answer tokens."""
    lr: float
    """Learning rate used for this step."""
    tokens_per_s: float
    """Input tokens (all positions, padding excluded) per second of this step."""
    elapsed_s: float
    """Training seconds since the first step started."""
    kind: str = "train"


@dataclass
class EvalRecord:
    """One line of metrics.jsonl per evaluation (validation during training, test at the end)."""

    step: int
    split: str
    """`val` (checkpoint selection) or `test` (the reported score)."""
    exact_match_k: int
    """Samples whose greedy prediction equals the answer after strip."""
    n: int
    """Samples evaluated."""
    exact_match: float
    """k / n, in [0, 1]."""
    token_accuracy: float
    """Teacher-forced argmax accuracy on answer tokens."""
    cer: float
    """Character error rate: total edit distance / total answer characters."""
    elapsed_s: float
    kind: str = "eval"


@dataclass
class Prediction:
    """One line of predictions.jsonl."""

    id: str
    """Sample identity (stable across cells scored on the same split)."""
    answer: str
    prediction: str
    correct: bool
    edit_distance: int


@dataclass
class OomInfo:
    phase: str
    """`setup`, `train` or `eval`."""
    in_use_bytes: int | None
    """Memory in use when the allocation failed (CUDA allocated, or process RSS on CPU)."""
    budget_bytes: int | None
    """The enforced budget, if any."""
    message: str
    """The allocator's own message."""


@dataclass
class ErrorInfo:
    type: str
    """Exception class name, or `signal` / `timeout`."""
    message: str
    phase: str
    log_tail: str = ""
    """Last lines of cell.log (filled in by the runner)."""


@dataclass
class PhaseMemory:
    peak_bytes: int | None = None
    """CPU: the process's peak RSS at the end of the phase (monotonic over the process);
    CUDA: torch.cuda.max_memory_allocated since the phase started."""
    reserved_bytes: int | None = None
    """CUDA only: torch.cuda.max_memory_reserved since the phase started."""


@dataclass
class Summary:
    outcome: str
    """One of OUTCOMES."""
    cell_id: str
    seed: int
    metrics: dict[str, Any] = field(default_factory=dict)
    """Reported (test split) evaluation of the best checkpoint: exact_match_k, n, exact_match,
    token_accuracy, cer; plus best_step, best_val (selection metric value), final_loss."""
    train: dict[str, Any] = field(default_factory=dict)
    """steps, first_loss, last_loss, first_token_accuracy, last_token_accuracy, steps_per_s,
    tokens_per_s, samples_seen."""
    memory: dict[str, Any] = field(default_factory=dict)
    """{"kind": "cpu_rss" | "cuda", "device": str, "budget_bytes": int | None,
    "baseline_bytes": int | None, "train": PhaseMemory, "eval": PhaseMemory}."""
    timings: dict[str, float] = field(default_factory=dict)
    """setup_s, train_s, eval_s, wall_s."""
    checkpoints: dict[str, str] = field(default_factory=dict)
    """name -> path relative to the cell directory (best, final, peft)."""
    oom: dict[str, Any] | None = None
    """OomInfo when outcome == oom."""
    error: dict[str, Any] | None = None
    """ErrorInfo when outcome is failed, timeout, diverged or interrupted."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """git_commit, git_dirty, python, torch, cuda, transformers, peft, packages, device_name,
    hostname, started_at, finished_at (ISO 8601 UTC)."""
    matrix: str | None = None
    """Matrix name (merged in by the runner, from cell.json)."""
    axes: dict[str, Any] = field(default_factory=dict)
    """Dotted key -> value of what this cell varies (merged in by the runner)."""
    repeat: int | None = None
    """Repeat index within the matrix (merged in by the runner)."""
    schema_version: int = SCHEMA_VERSION


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write via a temp file in the same directory + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    if dataclasses.is_dataclass(data):
        data = dataclasses.asdict(data)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a summary.json; raise ValueError naming the file when it is not a valid summary."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable summary ({exc})") from None
    if not isinstance(data, dict) or data.get("outcome") not in OUTCOMES:
        raise ValueError(f"{path}: not a summary (missing or unknown `outcome`)")
    return data


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL file written by the harness, skipping a torn last line (a killed writer)."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # torn final line of a killed process
            raise ValueError(f"{path}:{i + 1}: not valid JSON") from None
    return out
