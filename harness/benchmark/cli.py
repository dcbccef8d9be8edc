"""``benchmark``: evaluate a trained model (local or a W&B artifact) next to its base, and report.

    benchmark --wandb_artifact ENTITY/PROJECT/NAME:ALIAS [--base_model P] [--task T] [--data F]
              [--max_samples N] [--output report.md]
    benchmark --trained_model PATH [...]
    benchmark score --task humaneval --samples samples.jsonl   # score completions made elsewhere

Exit status: 0 done; 1 the run failed (W&B unreachable, download interrupted, out of memory, a
file could not be written); 2 bad input (one line says what and how to fix it; nothing written);
3 the "trained" model's logits equal its base's (flagged in the report too; ``--allow_unchanged``
makes it 0); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

from harness.benchmark.errors import EXIT_UNCHANGED, BenchmarkInputError, ReportedError, RunFailure
from harness.benchmark.settings import BenchmarkConfig, GenerationSettings
from harness.benchmark.source import check_source
from harness.benchmark.tasks import TASKS
from harness.contracts.errors import EXIT_OK, Parser, run_command

_GENERATION = {f.name for f in fields(GenerationSettings)} - {"stop"}


def _flag(parser: argparse._ActionsContainer, name: str, **kw) -> None:
    """``--name`` (the seed's spelling) and ``--name-with-dashes``."""
    names = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*names, dest=name, **kw)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="benchmark",
        description="Evaluate a trained model next to its base on the same samples; writes a "
        "markdown report and JSON results. `benchmark score --help` scores code completions.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    _flag(src, "trained_model", metavar="PATH", help="local checkpoint, any format loaders read")
    _flag(src, "wandb_artifact", metavar="REF", help="[entity/][project/]name[:alias] or a folder")
    _flag(p, "base_model", metavar="P", help="base model path or hub id (default: recorded)")
    _flag(p, "no_compare", action="store_true", help="evaluate the trained model only")
    _flag(p, "task", choices=tuple(TASKS), help="default: inferred from --data")
    _flag(p, "data", type=Path, metavar="F", help="QA JSONL, .txt/JSONL text, HumanEval JSONL")
    _flag(p, "max_samples", type=int, metavar="N", help="the first N samples (both models)")
    _flag(p, "sample_seed", type=int, metavar="S", help="a seeded random N instead of the first")
    _flag(p, "output", type=Path, default=Path("benchmark_report.md"), help="markdown report")
    _flag(p, "quiet", action="store_true", help="no progress or table")
    g = p.add_argument_group("models")
    _flag(g, "tokenizer", metavar="P", help="tokenizer folder when the checkpoint has none")
    _flag(g, "attention", metavar="MODE[:IMPL]", help="harness models: e.g. prefix_bidirectional")
    _flag(g, "lora_alpha", type=float, help="alpha for LoRA files that do not record it")
    _flag(g, "allow_remote_code", action="store_true", help="run a model repo's own code")
    _flag(g, "device", default="auto", help="auto, cpu, cuda, cuda:N")
    _flag(g, "dtype", choices=("float32", "bfloat16", "float16"), help="weights dtype")
    _flag(g, "allow_unchanged", action="store_true", help="exit 0 even if nothing changed")
    w = p.add_argument_group("W&B")
    _flag(w, "artifacts_dir", type=Path, help="local artifacts first (then $WANDB_ARTIFACT_DIR)")
    _flag(w, "wandb_timeout", type=float, default=30.0, help="seconds per API request")
    _flag(w, "download_limit", type=float, default=3600.0, help="hard limit of the whole fetch")
    e = p.add_argument_group("generation and scoring")
    _flag(e, "max_new_tokens", type=int, help="default: qa 20, humaneval 256")
    _flag(e, "temperature", type=float, default=0.0, help="0 = greedy")
    _flag(e, "top_p", type=float, default=1.0)
    _flag(e, "seed", type=int, default=0, help="sampling seed")
    _flag(e, "samples_per_task", type=int, default=1, help="k completions per problem (pass@k)")
    _flag(e, "max_length", type=int, default=1024, help="perplexity: tokens per sample at most")
    _flag(e, "batch_size", type=int, default=16, help="QA on harness vision models")
    _flag(e, "code_timeout", type=float, default=10.0, help="seconds per program (humaneval)")
    _flag(e, "workers", type=int, help="programs in parallel (default: available cores)")
    return p


def config_from_args(args: argparse.Namespace) -> BenchmarkConfig:
    """The typed config; raises BenchmarkInputError on a bad combination."""
    gen = {k: getattr(args, k) for k in _GENERATION if getattr(args, k) is not None}
    values = {
        f.name: getattr(args, f.name) for f in fields(BenchmarkConfig) if hasattr(args, f.name)
    }
    if args.workers is not None and args.workers < 1:
        raise BenchmarkInputError("--workers must be >= 1")
    return BenchmarkConfig(
        **{k: v for k, v in values.items() if k not in ("generation", "compare")},
        compare=not args.no_compare,
        generation=GenerationSettings(**gen),
    )


def check_output(path: Path) -> None:
    """Fail before any work when the report cannot be written there."""
    if path.is_dir() or path.with_suffix(".json").is_dir():
        raise BenchmarkInputError(f"--output {path}: is a folder; name a .md file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchmarkInputError(
            f"--output {path}: cannot create its folder ({e.strerror})"
        ) from None
    if not path.parent.is_dir() or not _writable(path.parent):
        raise BenchmarkInputError(f"--output {path}: its folder is not writable")


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def write_outputs(cfg: BenchmarkConfig, results) -> int:
    """Report + JSON; returns the exit status (3 when unchanged and not allowed)."""
    from harness.benchmark.render import render
    from harness.benchmark.result_schema import write_json
    from harness.contracts.store_files import atomic_write_text

    status = EXIT_UNCHANGED if results.unchanged and not cfg.allow_unchanged else EXIT_OK
    results.exit_status = status
    start = time.perf_counter()
    try:
        atomic_write_text(cfg.output, render(results.to_dict()))
        results.timings["report_s"] = time.perf_counter() - start
        results.timings["total_s"] += results.timings["report_s"]
        write_json(cfg.json_path, results)
    except OSError as e:
        raise RunFailure(f"could not write {cfg.output} / {cfg.json_path}: {e}") from e
    return status


def _run_and_report(cfg: BenchmarkConfig, argv: list[str], max_new_set: bool) -> int:
    from harness.benchmark.session import run_benchmark
    from harness.benchmark.terminal import Terminal

    ui = Terminal(cfg.quiet)
    results = run_benchmark(cfg, ui, ["benchmark", *argv], max_new_set)
    status = write_outputs(cfg, results)
    ui.table(results.to_dict(), str(cfg.output), str(cfg.json_path))
    if status == EXIT_UNCHANGED:
        print(
            "error: the trained model's logits equal the base's: the checkpoint changed nothing "
            f"(see {cfg.output}); pass --allow_unchanged to accept it",
            file=sys.stderr,
        )
    return status


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``benchmark`` / ``python -m harness.benchmark``, behind the shared error
    boundary (``harness.contracts.errors.run_command``): a bad flag or bad input is one line and
    exit 2, a failed run one line and exit 1 (a fetch error carries its own code), anything else
    is a bug and keeps its traceback. Arguments are checked before torch is even imported."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["score"]:
        from harness.benchmark import score

        return score.main(argv[1:])
    return run_command(lambda: _main(argv), on_interrupt="interrupted")


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    check_output(cfg.output)
    check_source(cfg)
    return _run(cfg, argv, args.max_new_tokens is not None)


def _run(cfg: BenchmarkConfig, argv: list[str], max_new_set: bool) -> int:
    """The run. What the data, model and checkpoint packages raise for bad input, and an out of
    memory, become this command's errors for the boundary; they are imported here, not in
    ``main``, so that a bad flag is answered before torch loads."""
    import torch

    from harness.data.jsonl import DataError
    from harness.models.hf import ModelLoadError
    from loaders import CheckpointError

    try:
        return _run_and_report(cfg, argv, max_new_set)
    except (MemoryError, torch.OutOfMemoryError) as exc:
        raise RunFailure(
            "out of memory; try --dtype bfloat16, a smaller --batch_size, or a machine "
            "with more memory"
        ) from exc
    except (DataError, CheckpointError, ModelLoadError) as exc:
        raise ReportedError(exc) from exc


if __name__ == "__main__":
    sys.exit(main())
