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
from pathlib import Path
from typing import TYPE_CHECKING

from harness.benchmark.errors import EXIT_UNCHANGED, BenchmarkInputError, ReportedError, RunFailure
from harness.benchmark.flags import add_flags, from_flags
from harness.benchmark.settings import HTML_SUFFIXES, BenchmarkConfig
from harness.benchmark.source import check_source
from harness.benchmark.tasks import TASKS
from harness.contracts.errors import EXIT_OK, Parser, run_command

if TYPE_CHECKING:
    from harness.benchmark.result_schema import BenchmarkResults


def build_parser() -> argparse.ArgumentParser:
    """``benchmark``'s flags, from their declarations on ``BenchmarkConfig`` (and its
    ``GenerationSettings``)."""
    parser = Parser(
        prog="benchmark",
        description="Evaluate a trained model next to its base on the same samples; writes a "
        "markdown report and JSON results. `benchmark score --help` scores code completions.",
    )
    defaults = ", ".join(f"{t.name} {t.max_new_tokens}" for t in TASKS.values() if t.generates)
    add_flags(parser, BenchmarkConfig, task_defaults=defaults)
    return parser


def config_from_args(args: argparse.Namespace) -> BenchmarkConfig:
    """The typed config; raises BenchmarkInputError on a bad combination."""
    return from_flags(BenchmarkConfig, vars(args))


def check_output(path: Path) -> None:
    """Fail before any work when the report cannot be written there."""
    page = path.suffix.lower() in HTML_SUFFIXES
    beside = (path.with_suffix(".json"), *([path.with_suffix(".md")] if page else []))
    if path.is_dir() or any(p.is_dir() for p in beside):
        raise BenchmarkInputError(f"--output {path}: is a folder; name a .md or .html file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchmarkInputError(
            f"--output {path}: cannot create its folder ({e.strerror})"
        ) from None
    if not path.parent.is_dir() or not _writable(path.parent):
        raise BenchmarkInputError(f"--output {path}: its folder is not writable")
    if page:  # the page inlines Plotly's bundle: a broken install is said now, not after the run
        from reports.html.page import plotly_bundle

        plotly_bundle()


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def write_outputs(cfg: BenchmarkConfig, results: BenchmarkResults) -> int:
    """Report + JSON (+ the HTML page from that JSON when ``--output`` ends in ``.html``);
    returns the exit status (3 when unchanged and not allowed)."""
    from harness.benchmark.render import render
    from harness.benchmark.result_schema import read_results, write_json
    from harness.contracts.store_files import atomic_write_text

    status = EXIT_UNCHANGED if results.unchanged and not cfg.allow_unchanged else EXIT_OK
    results.exit_status = status
    start = time.perf_counter()
    try:
        atomic_write_text(cfg.markdown_path, render(results.to_dict()))
        results.timings.report_s = time.perf_counter() - start
        results.timings.total_s += results.timings.report_s
        write_json(cfg.json_path, results)
        if cfg.html_path is not None:
            from harness.benchmark.page import write_page

            write_page(read_results(cfg.json_path), cfg.html_path, cfg.data)
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
    return _run(cfg, argv, "max_new_tokens" in vars(args))


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
