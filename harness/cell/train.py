"""The training loop: pure PyTorch, AdamW, warmup + cosine, gradient accumulation.

Loss normalisation: the loss of an optimizer step is the mean over *all* answer tokens of its
``grad_accum`` micro-batches, so accumulating 4 x 1 equals one batch of 4 (the original trainer
summed per-micro-batch means without dividing by grad_accum, which multiplies the effective
learning rate by grad_accum; ``train.legacy_unscaled_accum: true`` reproduces that on purpose).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

import torch

from harness.cell.encoding import EncodedSet, infinite_batches
from harness.cell.evaluate import EvalResult, evaluate
from harness.cell.stop import STOP
from harness.contracts.config import CellConfig, TrainConfig
from harness.contracts.schema import EvalRecord, TrainRecord
from harness.contracts.store_files import jsonl_line
from harness.models.prefix_lm import EncodedBatch, PrefixLM, answer_loss

if TYPE_CHECKING:
    from harness.cell.resume import ResumePoints


class Diverged(RuntimeError):
    """The loss became NaN or inf."""


class MetricsSink:
    """Appends one record per line to metrics.jsonl, flushed at once (a tail shows progress)."""

    def __init__(self, fh: IO[str] | None) -> None:
        self.fh = fh

    def write(self, record: TrainRecord | EvalRecord) -> None:
        if self.fh is not None:
            self.fh.write(jsonl_line(record))
            self.fh.flush()


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate for optimizer step ``step`` (1-based): linear warmup over ``warmup_steps``,
    then cosine decay to ``lr * min_lr_ratio`` at ``max_steps``.

    The schedule depends on the step alone, never on wall-clock time, so a run is reproducible on
    a busy machine; ``max_seconds`` only stops training early, and the summary then records
    ``stop_reason: time_cap`` with the steps done of those planned.
    """
    if step <= cfg.warmup_steps:
        return cfg.lr * step / cfg.warmup_steps
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


FUSED_ADAMW_DEVICES = ("cpu", "cuda")
"""Devices where torch's fused AdamW kernel runs (one kernel for all parameters: on CPU about 4x
faster than the per-parameter loop for tiny-vlm, ``tests/benchmarks/test_cell_bench.py``)."""


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (fused where supported); no weight decay on biases, norms and other 1-D parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = all(p.device.type in FUSED_ADAMW_DEVICES and p.dtype.is_floating_point for p in params)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=fused or None)


@dataclass
class StepStats:
    loss: float
    tokens: int
    answer_tokens: int
    correct: int


def train_step(
    model: PrefixLM,
    optimizer: torch.optim.Optimizer,
    micro_batches: list[EncodedBatch],
    cfg: TrainConfig,
    autocast: Callable[[], object] = nullcontext,
    scaler: torch.amp.GradScaler | None = None,
) -> StepStats:
    """One optimizer step over ``micro_batches`` (already on the device)."""
    total = sum(int((b.labels[:, 1:] != -100).sum()) for b in micro_batches)
    loss_sum, correct = 0.0, 0
    for batch in micro_batches:
        with autocast():
            out = model(batch)
            s, n, c = answer_loss(out.logits, batch.labels)
        # default: token-weighted mean over the whole step; legacy: per-micro mean, unscaled
        loss = s / total if not cfg.legacy_unscaled_accum else s / max(n, 1)
        (scaler.scale(loss) if scaler else loss).backward()
        loss_sum, correct = loss_sum + float(s.detach()), correct + c
    if scaler:
        scaler.unscale_(optimizer)
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(
            [p for g in optimizer.param_groups for p in g["params"]], cfg.grad_clip
        )
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    tokens = sum(b.num_tokens for b in micro_batches)
    return StepStats(loss_sum / max(total, 1), tokens, total, correct)


@dataclass
class TrainResult:
    steps: int = 0
    samples: int = 0
    train_s: float = 0.0
    eval_s: float = 0.0
    tokens: int = 0
    history: list[TrainRecord] = field(default_factory=list)
    best: EvalResult | None = None
    best_step: int = 0
    last: EvalResult | None = None
    stop_reason: str | None = None
    """``budget`` (every planned step ran) or ``time_cap`` (``train.max_seconds`` stopped it
    first); None while training runs or when an exception stopped it."""


def _micro_batches(
    data: EncodedSet, order: Iterator[list[int]], cfg: TrainConfig, device: torch.device
) -> list[EncodedBatch]:
    return [data.batch(next(order)).to(device) for _ in range(cfg.grad_accum)]


def train(
    model: PrefixLM,
    train_set: EncodedSet,
    val_set: EncodedSet,
    cfg: CellConfig,
    device: torch.device,
    sink: MetricsSink,
    on_best: Callable[[int, EvalResult], None] = lambda step, res: None,
    autocast: Callable[[], object] = nullcontext,
    scaler: torch.amp.GradScaler | None = None,
    res: TrainResult | None = None,
    resume: ResumePoints | None = None,
) -> TrainResult:
    """Train for ``train.max_steps`` (the budget), validating every ``eval_every`` and at the
    last step; ``train.max_seconds``, a safety cap, may stop it earlier (``res.stop_reason``
    says which: ``budget`` or ``time_cap``).

    Progress accumulates in ``res`` (pass one in to keep what was trained when training is
    stopped by an exception: a time limit, a signal, an OOM). ``resume`` continues from a loaded
    resume point and writes new ones (``harness/cell/resume.py``)."""
    tc = cfg.train
    optimizer = make_optimizer(model, tc)
    order = infinite_batches(len(train_set), min(tc.micro_batch, len(train_set)), cfg.seed)
    res = res if res is not None else TrainResult()
    done = resume.restore(model, optimizer, scaler, order, res) if resume else 0
    model.train()

    def one_step(step: int) -> bool:
        """The step, its record, validation and resume point; True when ``train.max_seconds``
        stops training after it."""
        t0 = time.perf_counter()
        lr = lr_at(tc, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batches = _micro_batches(train_set, order, tc, device)
        stats = train_step(model, optimizer, batches, tc, autocast, scaler)
        dt = time.perf_counter() - t0
        res.train_s += dt
        res.steps, res.tokens = step, res.tokens + stats.tokens
        res.samples += sum(int(b.input_ids.shape[0]) for b in batches)
        if not math.isfinite(stats.loss):
            raise Diverged(f"loss became {stats.loss} at step {step}")
        record = TrainRecord(
            step=step,
            loss=stats.loss,
            token_accuracy=stats.correct / max(stats.answer_tokens, 1),
            lr=lr,
            tokens_per_s=stats.tokens / dt,
            elapsed_s=res.train_s,
        )
        res.history.append(record)
        if step % tc.log_every == 0 or step == 1:
            sink.write(record)
        capped = tc.max_seconds is not None and res.train_s >= tc.max_seconds
        out_of_time = capped and step < tc.max_steps  # at the last step the budget is done
        if step % tc.eval_every == 0 or step == tc.max_steps or out_of_time:
            _validate(model, val_set, cfg, device, sink, step, res, on_best, autocast)
        if resume is not None:
            resume.after_step(step, model, optimizer, scaler, res)
        return out_of_time

    # with resume points on, a signal mid-step ends the step and writes a point first (stop.py)
    points = resume is not None and bool(resume.every)
    for step in range(done + 1, tc.max_steps + 1):
        with STOP.deferred() if points else nullcontext():
            out_of_time = one_step(step)
        if points and STOP.pending is not None:
            if step % resume.every:  # the cadence did not write this step's point: write it
                resume.write(step, model, optimizer, scaler, res)
            STOP.raise_pending(step)
        if out_of_time:
            res.stop_reason = "time_cap"
            return res
    res.stop_reason = "budget"
    return res


def _validate(model, val_set, cfg, device, sink, step, res, on_best, autocast) -> None:
    ev = evaluate(model, val_set, device, cfg.eval.batch_size, cfg.eval.max_new_tokens, autocast)
    res.eval_s += ev.elapsed_s
    res.last = ev
    sink.write(ev.record("val", step, res.train_s))
    metric = cfg.eval.best_metric
    if res.best is None or ev.metric(metric) > res.best.metric(metric):
        res.best, res.best_step = ev, step
        on_best(step, ev)
