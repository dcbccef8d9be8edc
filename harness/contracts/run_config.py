"""How a cell trains, evaluates, saves and runs: the ``train``, ``eval``, ``checkpoint`` and
``runtime`` sections of a cell's config (``harness.contracts.config.CellConfig`` holds them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from harness.contracts.attempts import BackoffStep


@dataclass
class LoraConfig:
    r: int = 16
    """LoRA rank."""
    alpha: float = 32.0
    """LoRA alpha (scale = alpha / r)."""
    dropout: float = 0.05
    """LoRA dropout."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    """Module name suffixes that get adapters."""
    extra_trainable: list[str] = field(default_factory=lambda: ["projector"])
    """Modules trained fully alongside the adapters (the seed's region head case)."""


@dataclass
class TrainConfig:
    method: Literal["full", "lora"] = "full"
    """`full`: every weight (decoder, projector, and the vision encoder unless
    `model.freeze_vision`); `lora`: PEFT adapters on the decoder + `lora.extra_trainable`."""
    max_steps: int = 1500
    """Optimizer steps (each = micro_batch x grad_accum samples)."""
    max_seconds: float | None = None
    """Stop training after this many seconds of training (evaluation not counted). A cap only: the
    learning-rate schedule follows steps, so size max_steps to fit and runs stay reproducible."""
    micro_batch: int = 16
    """Samples per forward pass."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    legacy_unscaled_accum: bool = False
    """Reproduce the original's bug: do not divide the loss by grad_accum."""
    lr: float = 1e-3
    """Peak learning rate (AdamW)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    warmup_steps: int = 100
    """Linear warmup steps before the cosine decay."""
    min_lr_ratio: float = 0.1
    """Cosine decays to lr * min_lr_ratio."""
    grad_clip: float = 1.0
    """Max gradient norm (0 disables clipping)."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Autocast: `auto` = bf16 on CUDA when supported, fp32 on CPU."""
    gradient_checkpointing: bool = False
    """Recompute decoder activations in backward to save memory."""
    eval_every: int = 250
    """Validate every N optimizer steps (and at the end)."""
    log_every: int = 10
    """Write a train record to metrics.jsonl every N optimizer steps."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """LoRA settings (method=lora)."""


@dataclass
class EvalConfig:
    max_new_tokens: int = 20
    """Greedy decoding stops at EOS or after this many tokens."""
    batch_size: int = 64
    """Samples per generation batch."""
    best_metric: Literal["exact_match", "token_accuracy", "cer"] = "exact_match"
    """Validation metric that picks the `best` checkpoint (cer: lower is better)."""


@dataclass
class CheckpointConfig:
    save: Literal["both", "best", "final", "none"] = "both"
    """Which checkpoints to write as safetensors."""
    peft_dir: bool = False
    """Also write a PEFT adapter directory (method=lora)."""
    resume_every: int | None = None
    """Write a resume point every N optimizer steps (weights, optimizer, RNG, data position) so
    that a killed or interrupted cell continues from there when run again; 0 or null: off.
    Not part of the cell id: it never changes a result (harness/cell/resume.py)."""


@dataclass
class RuntimeConfig:
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto` = cuda when available."""
    threads: int | Literal["auto"] | None = "auto"
    """torch CPU threads: `auto` = the cores this process may run on, with idle threads sleeping
    instead of spinning (robust beside other work; harness/cell/threads.py); an integer pins the
    count; null leaves torch's own defaults."""
    memory_budget_gb: float | None = None
    """Hard memory budget for the cell's process (enforced by the cell: RLIMIT_DATA on CPU, memory fraction on CUDA)."""
    timeout_s: float | None = None
    """Wall-clock limit for the whole cell from its process start: the cell stops itself and
    records `timeout`; the runner kills a cell that cannot, a grace period later."""
    oom_backoff: list[BackoffStep] = field(default_factory=list)
    """After an out-of-memory ending, retry in a fresh process with these steps, in order:
    `micro_batch` (halve it, double grad_accum: same samples per step), `gradient_checkpointing`,
    `eval_batch` (halve eval.batch_size); empty: an OOM is the cell's outcome at once."""
    skip_predicted_oom: bool = False
    """Record `skipped (predicted OOM, see cell ...)` instead of running a cell that a finished
    OOM cell predicts (harness/runner/predict.py); never when back-off could still help."""
