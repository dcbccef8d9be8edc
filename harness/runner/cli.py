"""``run-matrix`` / ``python run_matrix.py MATRIX.yaml``: plan, run, resume and report a matrix.

Exit status: 0 when every selected cell has a result (an OOM is a result), 1 when a cell
`failed` (crashed), 2 for bad input (nothing is run or written), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from rich.console import Console

from harness.config import ConfigError
from harness.runner.executor import LocalProcessExecutor
from harness.runner.loop import RunResult, StopRequest, run_plan
from harness.runner.matrix import Matrix, load_matrix, parse_assignment, select
from harness.runner.plan import RERUN_CHOICES, Plan, make_plan
from harness.runner.progress import cell_labels, make_progress, summary_table
from harness.runner.store import Store, StoreError
from harness.runner.tracking import MODES
from harness.runner.wandb_tracker import make_tracker, resolve_tracking

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_matrix.py",
        description="Expand an experiment matrix, run every cell in its own process, resume.",
        epilog="Example: python run_matrix.py experiments/smoke.yaml --dry-run",
    )
    p.add_argument("matrix", help="matrix file, e.g. experiments/attention.yaml")
    p.add_argument(
        "--store",
        default="runs",
        help="run store root (default: runs/); cells go to STORE/<matrix name>/<cell id>/",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a cell key in every cell, after the file (repeatable; YAML "
        "values), e.g. --set train.max_steps=50",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run only cells whose resolved KEY equals VALUE (repeatable: different "
        "keys must all match, several values of one key are alternatives)",
    )
    p.add_argument(
        "--rerun",
        action="append",
        default=[],
        choices=RERUN_CHOICES,
        help="also rerun cells whose stored outcome is this (repeatable); cells "
        "without a summary or `interrupted` always run",
    )
    p.add_argument("--max-cells", type=int, metavar="N", help="run at most N pending cells")
    p.add_argument("--dry-run", action="store_true", help="print the plan; run nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: print the plan as JSON")
    p.add_argument(
        "--report",
        nargs="?",
        const="",
        metavar="PATH",
        help="afterwards write the markdown report (default PATH: STORE/<matrix>/EXPERIMENTS.md)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress display, only the table")
    p.add_argument(
        "--cell-command",
        metavar="CMD",
        help="run cells with CMD instead of `python -m harness.cell` (it is called "
        "as CMD CELL.yaml --out DIR --cell-id ID)",
    )
    p.add_argument(
        "--wandb",
        choices=MODES,
        help="mirror every cell to W&B: offline (default; runs under STORE/wandb/, `wandb "
        "sync` them later), online (needs `wandb login`), disabled; wins over the matrix's "
        "`tracking.mode` and $WANDB_MODE",
    )
    p.add_argument("--wandb-project", metavar="NAME", help="W&B project (default: vlm-harness)")
    p.add_argument("--wandb-entity", metavar="NAME", help="W&B entity (team or user)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``run_matrix.py`` and the ``run-matrix`` console script."""
    args = build_parser().parse_args(argv)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return _main(args, err)
    except (ConfigError, StoreError) as exc:
        err.print(f"error: {exc}", markup=False)
        if isinstance(exc, ConfigError):
            err.print(
                "hint: keys and valid values are documented in harness/config.py and "
                "experiments/README.md; nothing was run.",
                markup=False,
            )
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("interrupted before any cell started; nothing was run.")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `--dry-run | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_OK


def _main(args: argparse.Namespace, err: Console) -> int:
    if args.json and not args.dry_run:
        raise ConfigError(["--json only applies to --dry-run"], "run_matrix.py")
    if args.max_cells is not None and args.max_cells < 0:
        raise ConfigError(["--max-cells must be >= 0"], "run_matrix.py")
    overrides = [parse_assignment(s, "--set") for s in args.set]
    only = [parse_assignment(s, "--only") for s in args.only]
    matrix = load_matrix(args.matrix, overrides)
    cells = select(matrix.cells, only)
    if not cells:
        raise ConfigError(
            [f"--only {' '.join(args.only)} selects none of the {len(matrix.cells)} cells"],
            args.matrix,
        )
    store = Store(args.store, matrix.name)
    tracking = resolve_tracking(matrix.tracking, args.wandb, args.wandb_project, args.wandb_entity)
    plan = make_plan(matrix, cells, store, set(args.rerun), args.max_cells)
    if args.dry_run:
        _print_plan(plan, args.json)
        return EXIT_OK
    store.ensure_writable()
    store.write_matrix_meta(
        matrix.name, matrix.description, matrix.source, matrix.cells, matrix.paired
    )
    executor = LocalProcessExecutor(
        command=shlex.split(args.cell_command) if args.cell_command else None
    )
    labels = cell_labels(matrix.cells, matrix.paired)
    progress = make_progress(quiet=args.quiet, labels=labels)
    warn = (lambda text: err.print(text, markup=False)) if args.quiet else progress.message
    tracker = make_tracker(tracking, store.root, store.matrix_dir, warn)
    try:
        with StopRequest().installed() as stop:
            if matrix.duplicates:
                progress.message(f"note: {matrix.duplicates} duplicate cell(s) merged")
            result = run_plan(plan, executor, progress, tracker=tracker, stop=stop)
    finally:
        tracker.close()
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=160)  # files and pipes: don't squeeze the axes
    out.print(summary_table(result.rows, labels))
    if args.report is not None:
        _write_report(store, args.report, err)
    return _finish(result, matrix, err)


def _finish(result: RunResult, matrix: Matrix, err: Console) -> int:
    if result.stopped:
        cell = result.interrupted
        what = f"cell {cell.cell_id} was marked interrupted; " if cell else ""
        err.print(
            f"Stopped: {what}completed cells are kept. Resume with:\n  {_resume_command()}",
            markup=False,
        )
        return EXIT_INTERRUPTED
    outcomes = result.outcomes()
    if "failed" in outcomes:
        err.print(
            f"{outcomes.count('failed')} cell(s) failed; see error.log_tail in their "
            f"summary.json (rerun them with --rerun failed)",
            markup=False,
        )
        return EXIT_FAILED
    return EXIT_OK


def _resume_command() -> str:
    prog = Path(sys.argv[0]).name
    prog = "python run_matrix.py" if prog == "run_matrix.py" else prog
    return " ".join([prog, *(shlex.quote(a) for a in sys.argv[1:])])


def _print_plan(plan: Plan, as_json: bool) -> None:
    data = plan.to_json()
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    print(f"matrix {data['matrix']} ({data['source']}) -> {data['store']}")
    print(
        f"{data['total']} cells: {data['to_run']} to run, {data['done']} done, "
        f"{data['running_elsewhere']} running elsewhere"
        + (f", {data['duplicates_merged']} duplicates merged" if data["duplicates_merged"] else "")
    )
    for c in data["cells"]:
        prev = f" (was {c['previous']})" if c["previous"] else ""
        axes = ", ".join(f"{k}={v}" for k, v in c["axes"].items())
        print(f"  {c['action']:8} {c['cell_id']}{prev}  {axes}")


def _write_report(store: Store, path: str, err: Console) -> None:
    out = Path(path) if path else store.matrix_dir / "EXPERIMENTS.md"
    try:
        import reports

        write_report = reports.write_report
    except (ImportError, AttributeError):
        err.print(
            "note: --report needs reports.write_report, which is not available in this "
            "checkout; the run store is complete, rerun with --report later.",
            markup=False,
        )
        return
    try:
        out = write_report(store.matrix_dir, out) or out
    except Exception as exc:  # the run store is complete either way
        err.print(f"error: the report could not be written: {exc}", markup=False)
        return
    err.print(f"report written to {out}", markup=False)
