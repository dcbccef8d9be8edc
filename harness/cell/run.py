"""One experiment cell: ``python -m harness.cell CELL.yaml --out DIR``.

Builds data and model, checks the attention mask, trains, scores the best checkpoint on the
held-out split and writes the files harness/contracts/schema.py gives to the cell. Every ending is an
outcome in summary.json, written once: completed, oom, diverged, timeout (the cell stops itself
at ``runtime.timeout_s`` from its process start; the runner is only the backstop for a cell that
cannot), failed, interrupted. Exit status: 0 when the cell ran to a result (completed, oom,
diverged, timeout), 1 when it failed or was interrupted (summary written), 2 for an invalid
config or output directory (nothing written).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import yaml

from harness.cell.device import device_problem, precision_context, resolve_device, torch_info
from harness.cell.stop import STOP, Interrupted
from harness.cell.threads import prepare_environment, resolve_threads
from harness.contracts import schema, store_files
from harness.contracts.attempts import substitution
from harness.contracts.config import (
    CellConfig,
    ConfigError,
    load_cell_config,
    to_dict,
)
from harness.contracts.errors import DISK_FULL_ERRNOS, Parser, run_command, writable_dir
from harness.contracts.identity import config_hash
from harness.contracts.outcomes import RESULT_OUTCOMES, now_iso, samples_planned, stop_reason
from harness.contracts.provenance import collect_provenance

SummaryHook = Callable[[schema.Summary], None]
"""Called with the summary just before it is written (OOM back-off records its attempts)."""


class TimedOut(Exception):
    """The cell ran past ``runtime.timeout_s`` (counted from the process start)."""


def _on_alarm(signum, frame) -> None:
    raise TimedOut("the cell ran past runtime.timeout_s and stopped itself")


def _process_age_s() -> float:
    """Seconds since this process started (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            start_ticks = int(fh.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/uptime", "rb") as fh:
            uptime = float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


class CellRun:
    """State of one running cell, so that any ending can still write a complete summary."""

    def __init__(
        self, cfg: CellConfig, out: Path, cell_id: str, on_summary: SummaryHook | None = None
    ) -> None:
        self.cfg, self.out, self.cell_id = cfg, out, cell_id
        self.on_summary = on_summary  # back-off's hook (harness/cell/backoff.py)
        self.phase = "setup"
        self.summary = schema.Summary(outcome="failed", cell_id=cell_id, seed=cfg.seed)
        tc = cfg.train
        self.summary.train.steps_planned = tc.max_steps
        self.summary.train.samples_planned = samples_planned(
            tc.max_steps, tc.micro_batch, tc.grad_accum
        )
        self.test_is_val = False
        self.started_at = now_iso()
        self.t0 = time.perf_counter()
        self.meter = None
        self.budget: int | None = None
        self.result = None
        self.resume = None

    # ------------------------------------------------------------------ phases
    def run(self) -> None:
        import torch

        from harness.cell.encoding import load_splits
        from harness.cell.memory import PeakMeter, apply_budget
        from harness.cell.resume import ResumePoints
        from harness.cell.train import MetricsSink, TrainResult, train
        from harness.cell.trainable import setup_trainable
        from harness.models import build_model

        cfg = self.cfg
        threads = resolve_threads(cfg.runtime.threads)
        if threads is not None:
            torch.set_num_threads(threads)
        device = resolve_device(cfg.runtime.device)
        self.meter = PeakMeter(device)
        gb = cfg.runtime.memory_budget_gb
        self.budget = None if gb is None else int(gb * 1024**3)
        memory = self.summary.memory
        memory.kind, memory.device, memory.budget_bytes = self.meter.kind, str(device), self.budget
        apply_budget(gb, device)
        memory.baseline_bytes = self.meter.in_use()
        torch.manual_seed(cfg.seed)
        splits = load_splits(cfg.data)
        self.test_is_val = splits.test_is_val
        model, _ = build_model(cfg.model)
        model.set_attention(cfg.attention.mode, cfg.attention.impl)
        model.set_prompt_format(cfg.data.prompt_format)
        if cfg.attention.self_check:
            model.check_attention(cfg.attention.mode, cfg.attention.impl)
        self.summary.train.params = setup_trainable(model, cfg)
        model.to(device)
        autocast, scaler = precision_context(cfg, device)
        train_set, val_set, test_set = splits.encode(model)
        self.summary.timings.setup_s = time.perf_counter() - self.t0

        self.phase = "train"
        self.meter.start()
        best_path = self.out / schema.CKPT_DIR / "best.safetensors"
        self.resume = ResumePoints.prepared(cfg, self.out, model, self.summary)
        with open(self.out / schema.METRICS_FILE, "a", encoding="utf-8") as fh:
            sink = MetricsSink(fh)
            on_best = self._on_best(model, best_path)
            self.result = TrainResult()  # filled step by step: kept if training is stopped
            args = (model, train_set, val_set, cfg, device, sink, on_best, autocast, scaler)
            train(*args, self.result, self.resume)
            memory.train = self.meter.peak()
            self._save_final(model)
            self.phase = "eval"
            self.meter.start()
            self._final_eval(model, test_set, device, sink, best_path, autocast)
            memory.eval = self.meter.peak()
        self.summary.outcome = "completed"

    def _on_best(self, model, best_path: Path):
        from harness.cell.checkpoints import save_checkpoint

        def save(step: int, res) -> None:
            if self.cfg.checkpoint.save in ("both", "best"):
                save_checkpoint(
                    model, self.cfg, best_path, step, res.metric(self.cfg.eval.best_metric)
                )
                self.summary.checkpoints["best"] = f"{schema.CKPT_DIR}/best.safetensors"

        return save

    def _save_final(self, model) -> None:
        from harness.cell.checkpoints import save_checkpoint, save_peft_dir

        ckpt = self.out / schema.CKPT_DIR
        if self.cfg.checkpoint.save in ("both", "final"):
            last = self.result.last
            metric = last.metric(self.cfg.eval.best_metric) if last else None
            save_checkpoint(model, self.cfg, ckpt / "final.safetensors", self.result.steps, metric)
            self.summary.checkpoints["final"] = f"{schema.CKPT_DIR}/final.safetensors"
        if self.cfg.checkpoint.peft_dir and self.cfg.train.method == "lora":
            save_peft_dir(model, ckpt / "peft", self.cfg.train.lora.extra_trainable)
            self.summary.checkpoints["peft"] = f"{schema.CKPT_DIR}/peft"

    def _final_eval(self, model, test_set, device, sink, best_path: Path, autocast) -> None:
        """Score the best checkpoint (reloaded from its file when this run wrote one) on the
        test split; without one (``checkpoint.save: final|none``) the final weights."""
        from harness.cell.checkpoints import restore_checkpoint
        from harness.cell.evaluate import evaluate

        res, ec = self.result, self.cfg.eval
        best = "best" in self.summary.checkpoints  # written by this run, not an earlier one
        if best:
            restore_checkpoint(model, self.cfg, best_path, str(device))
        ev = evaluate(model, test_set, device, ec.batch_size, ec.max_new_tokens, autocast)
        step, val = (res.best_step, res.best) if best else (res.steps, res.last)
        sink.write(ev.record("test", step, res.train_s))
        lines = "".join(store_files.jsonl_line(p) for p in ev.predictions)
        store_files.atomic_write_text(self.out / schema.PREDICTIONS_FILE, lines)
        self.summary.metrics = schema.Metrics(
            exact_match_k=ev.exact_match_k,
            n=ev.n,
            exact_match=ev.exact_match,
            token_accuracy=ev.token_accuracy,
            cer=ev.cer,
            loss=ev.loss,
            best_step=step,
            best_val=getattr(val, ec.best_metric) if val is not None else None,
            final_loss=res.history[-1].loss if res.history else None,
            test_is_val=self.test_is_val,
            scored_weights="best" if best else "final",
        )
        self.summary.timings.eval_s = res.eval_s + ev.elapsed_s

    # ------------------------------------------------------------------ ending
    def finish(self, exc: BaseException | None, evidence: str) -> int:
        from harness.cell.memory import is_oom, lift_budget, release_after_oom

        if self.budget is not None:
            lift_budget()
        if exc is not None:
            self._record_failure(exc, is_oom(exc), evidence)
            release_after_oom(exc, self.meter)
        self._fill_train_stats(exc)
        self.summary.timings.wall_s = time.perf_counter() - self.t0
        self.summary.provenance = _provenance() | {
            "started_at": self.started_at,
            "finished_at": now_iso(),
        }
        if self.on_summary is not None:
            self.on_summary(self.summary)
        store_files.write_json(self.out / schema.SUMMARY_FILE, self.summary)
        if self.resume is not None:
            self.resume.after_ending(self.summary.outcome, exc)
        return 0 if self.summary.outcome in RESULT_OUTCOMES else 1

    def _record_failure(self, exc: BaseException, oom: bool, evidence: str) -> None:
        from harness.cell.memory import oom_phase
        from harness.cell.train import Diverged

        s = self.summary
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if oom:
            s.outcome = "oom"
            in_use = self.meter.in_use() if self.meter else None
            s.oom = schema.OomInfo(oom_phase(exc, self.phase), in_use, self.budget, message)
            if self.meter and self.phase in ("train", "eval"):
                setattr(s.memory, self.phase, self.meter.peak())
            return
        if isinstance(exc, Diverged):
            s.outcome = "diverged"
        elif isinstance(exc, TimedOut):
            s.outcome = "timeout"
            message = f"the cell ran past runtime.timeout_s={self.cfg.runtime.timeout_s}s"
        elif isinstance(exc, Interrupted | KeyboardInterrupt):
            s.outcome = "interrupted"
        else:
            s.outcome = "failed"
        kind = "timeout" if isinstance(exc, TimedOut) else type(exc).__name__
        s.error = schema.ErrorInfo(kind, message, self.phase, evidence or message)

    def _fill_train_stats(self, exc: BaseException | None) -> None:
        res = self.result
        stats = self.summary.train
        stats.stop_reason = _stop_reason(res, exc, self.summary.outcome)
        if res is None or not res.history:
            return
        first, last = res.history[0], res.history[-1]
        stats.steps, stats.samples_seen = res.steps, res.samples
        stats.first_loss, stats.last_loss = first.loss, last.loss
        stats.first_token_accuracy = first.token_accuracy
        stats.last_token_accuracy = last.token_accuracy
        stats.steps_per_s = res.steps / res.train_s if res.train_s else None
        stats.tokens_per_s = res.tokens / res.train_s if res.train_s else None
        self.summary.timings.train_s = res.train_s


def _stop_reason(res, exc: BaseException | None, outcome: str) -> str:
    """Why training stopped (``schema.STOP_REASONS``): the loop's own ending (``budget``,
    ``time_cap``) when it ended by itself, even if a later phase failed; else the exception's."""
    if res is not None and res.stop_reason is not None:
        return res.stop_reason
    if exc is None:  # pragma: no cover - run() returns only after train() has ended itself
        return "error"
    return stop_reason(outcome)  # an Interrupted or KeyboardInterrupt is outcome `interrupted`


def _provenance() -> dict:
    """collect_provenance() plus torch, the device and the CPU threads training ran with."""
    import torch

    threads = {"torch_threads": torch.get_num_threads()}
    extra = threads | {"omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    return collect_provenance() | torch_info() | extra


def _user_errors() -> tuple[type[BaseException], ...]:
    """Expected endings reported as one line, without a traceback (input errors, divergence)."""
    from harness.cell.attention import AttentionUnavailable, MaskCheckError
    from harness.cell.train import Diverged
    from harness.cell.trainable import TrainableError
    from harness.data.jsonl import DataError
    from harness.models import ModelLoadError

    return (
        DataError,
        ModelLoadError,
        TrainableError,
        MaskCheckError,
        AttentionUnavailable,
        Diverged,
    )


def run_cell(
    cfg: CellConfig,
    out: Path,
    cell_id: str | None = None,
    write_config: bool = True,
    on_summary: SummaryHook | None = None,
) -> int:
    """Run one cell into ``out`` and write its summary; returns the exit status.

    ``write_config=False`` when ``out/config.yaml`` is the config being run (the runner wrote it:
    each run-store file has one writer). With ``runtime.oom_backoff`` each attempt runs in its
    own process (``harness/cell/backoff.py``, whose attempts pass ``on_summary``).
    """
    if cfg.runtime.oom_backoff and on_summary is None:
        from harness.cell.backoff import run_with_backoff

        started = time.monotonic() - _process_age_s()  # the monotonic clock spans a fork
        cell_id = cell_id or config_hash(cfg)
        return run_with_backoff(cfg, out, cell_id, write_config, run_cell, started)
    out.mkdir(parents=True, exist_ok=True)
    if write_config:
        text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
        store_files.atomic_write_text(out / schema.CONFIG_FILE, text)
    run = CellRun(cfg, out, cell_id or config_hash(cfg), on_summary)
    prepare_environment(cfg.runtime.threads)  # before torch's first import, where there is one
    from harness.cell.memory import is_oom

    STOP.pending = None
    handlers = {
        signal.SIGINT: STOP.handler,
        signal.SIGTERM: STOP.handler,
        signal.SIGALRM: _on_alarm,
    }
    old = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    if cfg.runtime.timeout_s:
        signal.setitimer(signal.ITIMER_REAL, max(0.01, cfg.runtime.timeout_s - _process_age_s()))
    evidence = ""
    try:
        run.run()
        exc = None
    except BaseException as caught:  # every ending becomes an outcome in summary.json
        exc = caught
        expected = (Interrupted, TimedOut, KeyboardInterrupt, ConfigError, *_user_errors())
        disk_full = isinstance(caught, OSError) and caught.errno in DISK_FULL_ERRNOS
        if not isinstance(caught, expected) and not is_oom(caught) and not disk_full:
            evidence = traceback.format_exc()  # a bug or an environment problem
            print(evidence, file=sys.stderr, end="")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in old.items():
            signal.signal(sig, handler)
    code = run.finish(exc, evidence)
    s = run.summary
    if s.metrics is not None and s.outcome == "completed":
        m = s.metrics
        score = f"{m.exact_match_k}/{m.n} ({100 * m.exact_match:.1f}%)"
        short = schema.budget_shortfall(store_files.to_json(s))
        short = ", ".join(x for x in (short, substitution(store_files.to_json(s))) if x)
        done = f"completed ({short})" if short else "completed"
        print(f"cell {run.cell_id}: {done}, exact match {score}", file=sys.stderr)
    else:
        detail = (s.oom or s.error).message if (s.oom or s.error) else ""
        print(f"cell {run.cell_id}: {s.outcome}: {detail}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m harness.cell`` / ``harness-cell``: an invalid config, device
    or output directory is one line and exit 2, nothing written (``harness.contracts.errors``)."""
    parser = Parser(prog="python -m harness.cell", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="cell YAML (a full or partial cell config)")
    parser.add_argument("--out", required=True, help="cell directory to write")
    parser.add_argument("--cell-id", help="identity to record (default: the config's content hash)")
    args = parser.parse_args(argv)
    return run_command(lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    cfg = load_cell_config(args.config)
    problem = device_problem(cfg.runtime.device)
    if problem:
        raise ConfigError([problem], args.config)
    out = writable_dir(args.out, "cell's files", "--out")
    same = Path(args.config).resolve() == (out / schema.CONFIG_FILE).resolve()
    return run_cell(cfg, out, args.cell_id, write_config=not same)


if __name__ == "__main__":
    sys.exit(main())
