"""The run store's file formats and who writes each file, in one place.

A matrix directory ``runs/<matrix>/`` holds ``matrix.json``, ``.locks/`` (one flock file per
cell), the report (``EXPERIMENTS.md`` + ``EXPERIMENTS_plots/``) and one directory per cell.
Every file has exactly one writer, listed in ``WRITERS`` (the README's run-store table):

- the runner writes ``matrix.json``, ``config.yaml`` (``harness.cell`` run by hand writes it when
  its input is another file), ``cell.json`` (``CellInfo``: at the start, and again at the end
  with ``finished_at`` and ``runner_wall_s``) and the ``*.<n>`` renames of an earlier attempt;
- the cell writes ``metrics.jsonl`` (``TrainRecord`` / ``EvalRecord`` lines), ``predictions.jsonl``
  (``Prediction`` lines), ``ckpt/``, ``resume/`` (the resume point, ``ResumeManifest``: only while
  the cell is unfinished and ``checkpoint.resume_every`` is on) and ``cell.log`` (its stdout and
  stderr, a file the executor opens for it);
- ``attempts/<n>/`` (``runtime.oom_backoff``): the summary and metrics of attempt ``n`` that ran
  out of memory, moved there by the cell before it retries;
- ``summary.json`` (``Summary``) is written atomically, exactly once per attempt: by the cell at
  every ending it can handle, by the runner only when the cell could not (a crash, a kill, a hang
  past its time limit); ``written_by`` says which.

Readers validate what they read (``harness/contracts/store_files.py``: ``read_summary``, ``read_metrics``,
``read_jsonl``) and writers write these dataclasses (``write_json``, ``jsonl_line``): a file
whose values have the wrong types raises ``SchemaError`` naming the file and the key, so a
damaged cell is reported as damaged and never crashes a reader. ``SCHEMA_VERSION`` is bumped on
any incompatible change; version 1 stores (which also merged ``matrix``, ``axes``, ``repeat``
and ``timings.runner_wall_s`` into summary.json) still read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.contracts.attempts import ATTEMPTS_DIR, Attempt

SCHEMA_VERSION = 2

MATRIX_FILE = "matrix.json"
CONFIG_FILE = "config.yaml"
CELL_FILE = "cell.json"
METRICS_FILE = "metrics.jsonl"
PREDICTIONS_FILE = "predictions.jsonl"
SUMMARY_FILE = "summary.json"
CKPT_DIR = "ckpt"
LOG_FILE = "cell.log"
RESUME_DIR = "resume"
RESUME_MANIFEST = "resume.json"
"""Inside ``RESUME_DIR``: the commit record of the resume point (``ResumeManifest``)."""

WRITERS: dict[str, str] = {
    MATRIX_FILE: "runner",
    CONFIG_FILE: "runner",
    CELL_FILE: "runner",
    LOG_FILE: "cell",
    METRICS_FILE: "cell",
    PREDICTIONS_FILE: "cell",
    SUMMARY_FILE: "cell, else runner",
    CKPT_DIR: "cell",
    RESUME_DIR: "cell",
    ATTEMPTS_DIR: "cell",
}
"""File -> the process that writes it (the table above)."""

OUTCOMES: tuple[str, ...] = (
    "completed",
    "oom",
    "timeout",
    "diverged",
    "failed",
    "interrupted",
    "skipped",
)
"""``skipped``: not run, a predicted OOM (``runtime.skip_predicted_oom``; the runner writes it)."""

STOP_REASONS: tuple[str, ...] = (
    "budget",
    "time_cap",
    "diverged",
    "interrupted",
    "timeout",
    "oom",
    "error",
)
"""Why training stopped (``TrainStats.stop_reason``). Only ``budget`` means the cell trained
what its config asked for; a ``completed`` cell with ``time_cap`` is flagged as truncated
everywhere (runner table, live display, report outcomes, findings), never a distinct outcome."""


class SchemaError(ValueError):
    """A run-store file that is not what the schema says (message names the file and key)."""


# --------------------------------------------------------------------------- records


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


RECORD_KINDS: dict[str, type] = {"train": TrainRecord, "eval": EvalRecord}


@dataclass
class Prediction:
    """One line of predictions.jsonl."""

    id: str
    """Sample identity (stable across cells scored on the same split)."""
    answer: str
    prediction: str
    correct: bool
    edit_distance: int


def budget_shortfall(summary: dict[str, Any], planned_steps: int | None = None) -> str | None:
    """Why a cell did not train its full budget, as text for tables and findings, or None.

    ``"time cap at 241/800 steps"`` for a cell stopped by ``train.max_seconds``; ``"241/800
    steps"`` for any other shortfall. ``planned_steps`` (the config's ``train.max_steps``) is the
    fallback for stores written before ``steps_planned``/``stop_reason`` existed, so those are
    flagged too. A cell that did not finish (``outcome`` other than ``completed``) is judged by
    its outcome: None here.
    """
    if summary.get("outcome", "completed") != "completed":
        return None
    train = summary.get("train") or {}
    done, planned = train.get("steps"), train.get("steps_planned") or planned_steps
    reason = train.get("stop_reason")
    if not _count(done) or not _count(planned):
        return "time cap" if reason == "time_cap" else None
    if done >= planned:
        return None
    return (
        f"time cap at {done}/{planned} steps" if reason == "time_cap" else f"{done}/{planned} steps"
    )


def resumed_text(summary: dict[str, Any]) -> str:
    """``resumed at step 400/700`` for an attempt that continued from a resume point, the note
    for one that found a point it could not use (damaged, another config's) and trained from step 0, else ""."""
    train = summary.get("train") or {}
    at, planned = train.get("resumed_at"), train.get("steps_planned")
    if isinstance(at, int) and at > 0:
        return (
            f"resumed at step {at}/{planned}"
            if isinstance(planned, int)
            else f"resumed at step {at}"
        )
    note = train.get("resume_note")
    return "resume point not used, trained from step 0" if note else ""


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --------------------------------------------------------------------------- summary.json


@dataclass
class Metrics:
    """The reported (test split) evaluation of the scored weights (``scored_weights``)."""

    exact_match_k: int
    n: int
    exact_match: float
    token_accuracy: float
    cer: float
    loss: float | None
    """Teacher-forced answer-token loss on the reported split."""
    best_step: int
    """Step whose weights were scored: the best validation step, or the last step when
    ``scored_weights`` is ``final`` (the stored key keeps its name)."""
    best_val: float | None
    """Validation selection metric of the ``best_step`` step: the best one only when
    ``scored_weights`` is ``best``."""
    final_loss: float | None
    """Training loss of the last step."""
    test_is_val: bool | None = None
    """True when the reported split is the validation split (a JSONL run without
    ``data.test_path``, or without ``data.val_path``, or with the same file for both): with
    ``scored_weights: best`` that split chose ``best_step``, so the score is not held out.
    None in version-2 stores written before the field existed (added without a version bump:
    readers treat the missing key as unknown)."""
    scored_weights: str | None = None
    """Which weights were scored: ``best`` (the step with the best validation metric) or
    ``final`` (the last step, with ``checkpoint.save: final|none``; ``best_val`` is then that
    step's validation score)."""


@dataclass
class TrainStats:
    params: dict[str, Any] = field(default_factory=dict)
    """Trainable / total parameter counts (harness/cell/trainable.py)."""
    steps: int | None = None
    """Optimizer steps done."""
    steps_planned: int | None = None
    """The budget: ``train.max_steps``."""
    samples_seen: int | None = None
    samples_planned: int | None = None
    """``max_steps * batch_size * grad_accum``."""
    stop_reason: str | None = None
    """One of ``STOP_REASONS``; None in stores written before it existed (readers then compare
    ``steps`` with the config's ``train.max_steps``)."""
    first_loss: float | None = None
    last_loss: float | None = None
    first_token_accuracy: float | None = None
    last_token_accuracy: float | None = None
    steps_per_s: float | None = None
    tokens_per_s: float | None = None
    resumed_at: int | None = None
    """The step of the resume point this attempt continued from (``checkpoint.resume_every``);
    None when it trained from step 0. Added without a version bump (missing: not resumed)."""
    resume_note: str | None = None
    """Why a resume point found in the cell folder was not used (damaged, another config's):
    the attempt then trained from step 0."""


@dataclass
class PhasePeak:
    """Peak memory of one phase (train or eval)."""

    peak_bytes: int | None = None
    """CPU: the process's peak RSS during the phase (VmHWM reset at its start where the kernel
    allows it); CUDA: torch.cuda.max_memory_allocated since the phase started."""
    reserved_bytes: int | None = None
    """CUDA only: torch.cuda.max_memory_reserved since the phase started."""


@dataclass
class MemoryInfo:
    kind: str | None = None
    """`cpu_rss` or `cuda`."""
    device: str | None = None
    budget_bytes: int | None = None
    """The enforced budget (runtime.memory_budget_gb), if any."""
    baseline_bytes: int | None = None
    train: PhasePeak | None = None
    eval: PhasePeak | None = None


@dataclass
class Timings:
    setup_s: float | None = None
    train_s: float | None = None
    eval_s: float | None = None
    wall_s: float | None = None
    """Seconds from the cell's start to its summary (the runner's own is in cell.json)."""


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
    """Exception class name, or `signal` / `timeout` / `missing_summary` / `exit`."""
    message: str
    phase: str
    log_tail: str = ""
    """The evidence: the traceback (a bug), the one-line error (bad input), or the last lines
    of cell.log when the runner writes the summary."""


@dataclass
class Summary:
    outcome: str
    """One of OUTCOMES."""
    cell_id: str
    seed: int
    metrics: Metrics | None = None
    """None until the held-out evaluation ran."""
    train: TrainStats = field(default_factory=TrainStats)
    memory: MemoryInfo = field(default_factory=MemoryInfo)
    timings: Timings = field(default_factory=Timings)
    checkpoints: dict[str, str] = field(default_factory=dict)
    """name -> path relative to the cell directory (best, final, peft)."""
    oom: OomInfo | None = None
    """When outcome == oom."""
    error: ErrorInfo | None = None
    """When outcome is failed, timeout, diverged or interrupted."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """git_commit, git_dirty, python, torch, cuda, transformers, peft, packages, device_name,
    hostname, platform, started_at, finished_at (ISO 8601 UTC)."""
    written_by: str = "cell"
    """`cell`, or `runner` when the cell could not write its own summary."""
    effective: dict[str, Any] = field(default_factory=dict)
    """With ``runtime.oom_backoff``: the settings the result was produced with
    (``harness/contracts/attempts.py``: ``train.micro_batch``, ``train.grad_accum``, ...)."""
    attempts: list[Attempt] = field(default_factory=list)
    """With ``runtime.oom_backoff``: every attempt, in order (empty without it)."""
    schema_version: int = SCHEMA_VERSION


@dataclass
class ResumeManifest:
    """resume/resume.json: the resume point's commit record, written last and atomically (the
    files it names are complete and synced before it names them; harness/cell/resume.py)."""

    step: int
    """Optimizer steps done when the point was written: the attempt that resumes starts at the
    next one."""
    steps_planned: int
    config_hash: str
    """The cell id of the config that wrote it; a point of another config is never used."""
    state: str
    """The torch file (in ``resume/``) with weights, optimizer, RNG states and progress."""
    state_bytes: int
    state_sha256: str
    metrics_bytes: int
    """Length of metrics.jsonl at this step: the lines after it are cut on resume."""
    best: str | None = None
    """A hard link (or copy) of ``ckpt/best.safetensors`` as it was at this step, if any."""
    best_bytes: int | None = None
    written_at: str = ""


@dataclass
class CellInfo:
    """cell.json: what the runner knows about a cell (written by the runner only)."""

    cell_id: str
    matrix: str
    source: str
    """The matrix file."""
    axes: dict[str, Any]
    """Dotted key -> value of what this cell varies."""
    repeat: int
    index: int
    """Position in the expanded matrix."""
    started_at: str
    finished_at: str | None = None
    runner_wall_s: float | None = None
    """Seconds from the runner starting the cell process to its summary."""
    job: dict[str, Any] | None = None
    """The cluster job that ran the cell (``--executor slurm``): executor, id, state, reason,
    requeues, node; None for local and Ray cells."""


@dataclass
class MatrixInfo:
    """matrix.json: the matrix a store holds (written by the runner only)."""

    name: str
    description: str
    source: str
    axes: dict[str, list[Any]]
    """Axis (dotted key, or a paired axis's label) -> its values in matrix order."""
    paired: dict[str, list[str]]
    """Paired axis label -> the dotted keys that vary together (reports compare it as one)."""
