"""One experiment cell: ``python -m harness.cell CELL.yaml --out DIR``.

Builds data and model, checks the attention mask, trains, scores the best checkpoint on the
held-out split and writes the run-store files described in harness/schema.py. Every ending is an
outcome in summary.json: completed, oom, diverged, failed, interrupted (timeouts are recorded by
the runner, which enforces them). Exit status: 0 when the cell ran to a result (completed, oom,
diverged), 1 when it failed or was interrupted (summary written), 2 for an invalid config or
output directory (nothing written).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from contextlib import nullcontext
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import yaml

from harness import schema
from harness.config import CellConfig, ConfigError, config_hash, load_cell_config, to_dict


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived while the cell was running."""


def _on_signal(signum, frame) -> None:
    raise Interrupted(f"stopped by {signal.Signals(signum).name}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class CellRun:
    """State of one running cell, so that any ending can still write a complete summary."""

    def __init__(self, cfg: CellConfig, out: Path, cell_id: str) -> None:
        self.cfg, self.out, self.cell_id = cfg, out, cell_id
        self.phase = "setup"
        self.summary = schema.Summary(outcome="failed", cell_id=cell_id, seed=cfg.seed)
        self.summary.provenance["started_at"] = _now()
        self.t0 = time.perf_counter()
        self.mem = None
        self.budget: int | None = None
        self.result = None

    # ------------------------------------------------------------------ phases
    def run(self) -> None:
        import torch

        from harness.attention import self_check
        from harness.dataset import EncodedSet, load_splits
        from harness.memory import PhaseMemory, apply_budget
        from harness.models import build_model
        from harness.train import MetricsSink, train
        from harness.trainable import setup_trainable

        cfg = self.cfg
        if cfg.runtime.threads:
            torch.set_num_threads(cfg.runtime.threads)
        device = _device(cfg.runtime.device)
        self.mem = PhaseMemory(device)
        gb = cfg.runtime.memory_budget_gb
        self.budget = None if gb is None else int(gb * 1024**3)
        self.summary.memory = {"kind": self.mem.kind, "device": str(device),
                               "budget_bytes": self.budget}  # fmt: skip
        apply_budget(gb, device)
        self.summary.memory["baseline_bytes"] = self.mem.in_use()
        torch.manual_seed(cfg.seed)
        splits = load_splits(cfg.data, cfg.seed)
        model, _ = build_model(cfg.model)
        model.set_attention(cfg.attention.mode, cfg.attention.impl)
        if cfg.attention.self_check:
            self_check(model.base_decoder(), cfg.attention.mode, cfg.attention.impl,
                       prefix_len=model.prefix_len())  # fmt: skip
        self.summary.train["params"] = setup_trainable(model, cfg)
        model.to(device)
        autocast, scaler = _precision(cfg, device)
        train_set = EncodedSet(splits.train, model)
        val_set, test_set = EncodedSet(splits.val, model), EncodedSet(splits.test, model)
        self.summary.timings["setup_s"] = time.perf_counter() - self.t0

        self.phase = "train"
        self.mem.start()
        best_path = self.out / schema.CKPT_DIR / "best.safetensors"
        with open(self.out / schema.METRICS_FILE, "a", encoding="utf-8") as fh:
            sink = MetricsSink(fh)
            on_best = self._on_best(model, best_path)
            self.result = train(model, train_set, val_set, cfg, device, sink, on_best, autocast,
                                scaler)  # fmt: skip
            self.summary.memory["train"] = self.mem.peak()
            self._save_final(model)
            self.phase = "eval"
            self.mem.start()
            self._final_eval(model, test_set, device, sink, best_path, autocast)
            self.summary.memory["eval"] = self.mem.peak()
        self.summary.outcome = "completed"

    def _on_best(self, model, best_path: Path):
        from harness.checkpoints import save_checkpoint

        def save(step: int, res) -> None:
            if self.cfg.checkpoint.save in ("both", "best"):
                save_checkpoint(
                    model, self.cfg, best_path, step, res.metric(self.cfg.eval.best_metric)
                )
                self.summary.checkpoints["best"] = f"{schema.CKPT_DIR}/best.safetensors"

        return save

    def _save_final(self, model) -> None:
        from harness.checkpoints import save_checkpoint, save_peft_dir

        ckpt = self.out / schema.CKPT_DIR
        if self.cfg.checkpoint.save in ("both", "final"):
            last = self.result.last
            metric = last.metric(self.cfg.eval.best_metric) if last else None
            save_checkpoint(model, self.cfg, ckpt / "final.safetensors", self.result.steps, metric)
            self.summary.checkpoints["final"] = f"{schema.CKPT_DIR}/final.safetensors"
        if self.cfg.checkpoint.peft_dir and self.cfg.train.method == "lora":
            save_peft_dir(model, ckpt / "peft")
            self.summary.checkpoints["peft"] = f"{schema.CKPT_DIR}/peft"

    def _final_eval(self, model, test_set, device, sink, best_path: Path, autocast) -> None:
        """Score the best checkpoint (reloaded from its file when one was written) on the test split."""
        from harness.checkpoints import restore_checkpoint
        from harness.evaluate import evaluate

        res = self.result
        if best_path.exists():
            restore_checkpoint(model, self.cfg, best_path, str(device))
        ev = evaluate(model, test_set, device, self.cfg.eval.batch_size,
                      self.cfg.eval.max_new_tokens, autocast)  # fmt: skip
        step = res.best_step if best_path.exists() else res.steps
        sink.write({"kind": "eval", "split": "test", "step": step, "exact_match_k": ev.exact_match_k,
                    "n": ev.n, "exact_match": ev.exact_match, "token_accuracy": ev.token_accuracy,
                    "cer": ev.cer, "elapsed_s": res.train_s})  # fmt: skip
        lines = "".join(json.dumps(asdict(p), sort_keys=True) + "\n" for p in ev.predictions)
        schema.atomic_write_text(self.out / schema.PREDICTIONS_FILE, lines)
        best_val = res.best.metric(self.cfg.eval.best_metric) if res.best else None
        self.summary.metrics = {
            "exact_match_k": ev.exact_match_k, "n": ev.n, "exact_match": ev.exact_match,
            "token_accuracy": ev.token_accuracy, "cer": ev.cer, "loss": ev.loss,
            "best_step": step, "best_val": best_val,
            "final_loss": res.history[-1]["loss"] if res.history else None,
        }  # fmt: skip
        self.summary.timings["eval_s"] = res.eval_s + ev.elapsed_s

    # ------------------------------------------------------------------ ending
    def finish(self, exc: BaseException | None) -> int:
        from harness.memory import is_oom, lift_budget

        if self.budget is not None:
            lift_budget()
        if exc is not None:
            self._record_failure(exc, is_oom(exc))
        self._fill_train_stats()
        self.summary.timings["wall_s"] = time.perf_counter() - self.t0
        self.summary.provenance = _provenance() | {
            "started_at": self.summary.provenance["started_at"],
            "finished_at": _now(),
        }
        schema.write_json(self.out / schema.SUMMARY_FILE, self.summary)
        return 0 if self.summary.outcome in ("completed", "oom", "diverged") else 1

    def _record_failure(self, exc: BaseException, oom: bool) -> None:
        from harness.train import Diverged

        s = self.summary
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if oom:
            s.outcome = "oom"
            s.oom = asdict(schema.OomInfo(self.phase, self.mem.in_use() if self.mem else None,
                                          self.budget, message))  # fmt: skip
            if self.mem and self.phase in ("train", "eval"):
                s.memory[self.phase] = self.mem.peak()
            return
        s.outcome = ("diverged" if isinstance(exc, Diverged)
                     else "interrupted" if isinstance(exc, Interrupted | KeyboardInterrupt)
                     else "failed")  # fmt: skip
        s.error = asdict(schema.ErrorInfo(type(exc).__name__, message, self.phase))

    def _fill_train_stats(self) -> None:
        res = self.result
        if res is None or not res.history:
            return
        first, last = res.history[0], res.history[-1]
        self.summary.train |= {
            "steps": res.steps, "samples_seen": res.samples,
            "first_loss": first["loss"], "last_loss": last["loss"],
            "first_token_accuracy": first["token_accuracy"],
            "last_token_accuracy": last["token_accuracy"],
            "steps_per_s": res.steps / res.train_s if res.train_s else None,
            "tokens_per_s": res.tokens / res.train_s if res.train_s else None,
        }  # fmt: skip
        self.summary.timings["train_s"] = res.train_s


def _device(name: str):
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("runtime.device: cuda requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _precision(cfg: CellConfig, device):
    """Autocast context factory and (fp16 only) a GradScaler."""
    import torch

    prec = cfg.train.precision
    if prec == "auto":
        prec = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if prec == "fp32":
        return nullcontext, None
    dtype = torch.bfloat16 if prec == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if prec == "fp16" and device.type == "cuda" else None
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler


def _provenance() -> dict:
    from harness.provenance import collect_provenance

    return collect_provenance()


def _user_errors() -> tuple[type[BaseException], ...]:
    """Expected endings reported as one line, without a traceback (input errors, divergence)."""
    from harness.attention import MaskCheckError
    from harness.data.jsonl import DataError
    from harness.models import ModelLoadError
    from harness.train import Diverged
    from harness.trainable import TrainableError

    return (DataError, ModelLoadError, TrainableError, MaskCheckError, Diverged)


def run_cell(cfg: CellConfig, out: Path, cell_id: str | None = None) -> int:
    """Run one cell into ``out`` and write its summary; returns the exit status."""
    out.mkdir(parents=True, exist_ok=True)
    schema.atomic_write_text(out / schema.CONFIG_FILE, yaml.safe_dump(to_dict(cfg), sort_keys=True))
    run = CellRun(cfg, out, cell_id or config_hash(cfg))
    from harness.memory import is_oom

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        run.run()
        exc = None
    except BaseException as caught:  # every ending becomes an outcome in summary.json
        exc = caught
        expected = (Interrupted, KeyboardInterrupt, *_user_errors())
        if not isinstance(caught, expected) and not is_oom(caught):
            traceback.print_exc()  # a bug or an environment problem: keep the evidence in the log
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    code = run.finish(exc)
    s = run.summary
    if s.outcome == "completed":
        m = s.metrics
        print(f"cell {run.cell_id}: completed, exact match {m['exact_match_k']}/{m['n']} "
              f"({100 * m['exact_match']:.1f}%)", file=sys.stderr)  # fmt: skip
    else:
        detail = (s.oom or s.error or {}).get("message", "")
        print(f"cell {run.cell_id}: {s.outcome}: {detail}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.cell", description=__doc__.split("\n")[0]
    )
    parser.add_argument("config", help="cell YAML (a full or partial cell config)")
    parser.add_argument("--out", required=True, help="cell directory to write")
    parser.add_argument("--cell-id", help="identity to record (default: the config's content hash)")
    args = parser.parse_args(argv)
    try:
        cfg = load_cell_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        print(f"error: cannot write to --out {out}: {exc.strerror}", file=sys.stderr)
        return 2
    return run_cell(cfg, out, args.cell_id)


if __name__ == "__main__":
    sys.exit(main())
