"""``run-matrix`` / ``python run_matrix.py MATRIX.yaml``: plan, run, resume and report a matrix.

Exit status: 0 when every selected cell has a result (an OOM is a result), 1 when a cell
`failed` (crashed), 2 for bad input (nothing is run or written), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.contracts.config import ConfigError
from harness.contracts.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Parser,
    UserError,
    run_command,
)
from harness.contracts.outcomes import RERUN_CHOICES
from harness.runner import preflight
from harness.runner.cell_text import error_reason, label_of
from harness.runner.executor import Executor, LocalProcessExecutor
from harness.runner.loop import RunResult, StopRequest, run_plan
from harness.runner.matrix import Cell, Matrix, load_matrix, parse_assignment, select
from harness.runner.plan import Plan, make_plan
from harness.runner.progress import cell_labels, make_progress, summary_table
from harness.runner.slurm_config import EXECUTORS
from harness.runner.store import Store
from harness.runner.tracking import MODES
from harness.runner.wandb_tracker import make_tracker, resolve_tracking
from harness.runner.workers import auto_workers, describe


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
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
    p.add_argument("--max-cells", type=_count, metavar="N", help="run at most N pending cells")
    p.add_argument("--dry-run", action="store_true", help="print the plan; run nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: print the plan as JSON")
    p.add_argument(
        "--report",
        nargs="?",
        const="",
        metavar="PATH",
        help="afterwards write the markdown report (default PATH: STORE/<matrix>/EXPERIMENTS.md) "
        "and EXPERIMENTS.html beside it (rewritten after every finished cell)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress display, only the table")
    p.add_argument(
        "--cell-command",
        metavar="CMD",
        help="run cells with CMD instead of `python -m harness.cell` (it is called "
        "as CMD CELL.yaml --out DIR --cell-id ID)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run up to N cells at once (default: the matrix's `workers:`, else 1; `auto` "
        "there is one per GPU, or per `runtime.threads` cores on CPU; with --executor ray, "
        "every pending cell is handed to Ray at once and Ray schedules them)",
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="where cells run: local processes (default, or the matrix's `executor:`), Ray "
        "tasks (pip install '.[ray]') or Slurm jobs (pip install '.[slurm]'; the matrix's "
        "`slurm:` section says what each job asks for)",
    )
    p.add_argument(
        "--detach",
        action="store_true",
        help="with --executor slurm: submit the cells' jobs and exit; the same command "
        "without --detach later collects them (jobs still queued are never submitted twice)",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="with --executor ray: the cluster to join, e.g. HEAD_IP:6379 (default: "
        "$RAY_ADDRESS, else a local Ray instance started for this run)",
    )
    p.add_argument(
        "--cold-start",
        action="store_true",
        help="start every cell in a fresh interpreter instead of forking it from a server that "
        "has already imported torch (the automatic fallback where that cannot work)",
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
    """Entry point of ``run_matrix.py`` and the ``run-matrix`` console script: bad input is one
    line and exit 2, nothing run or written (``harness.contracts.errors.run_command``)."""
    args = build_parser().parse_args(argv)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    return run_command(
        lambda: _main(args, err),
        on_interrupt="interrupted; completed cells are kept: run the same command to resume.",
    )


def _main(args: argparse.Namespace, err: Console) -> int:
    if args.json and not args.dry_run:
        raise ConfigError(["--json only applies to --dry-run"], "run_matrix.py")
    command = preflight.cell_command(args.cell_command)
    preflight.report_path(args.report)
    if args.workers is not None and args.workers < 1:
        raise ConfigError([f"--workers must be >= 1, got {args.workers}"], "run_matrix.py")
    overrides = [parse_assignment(s, "--set") for s in args.set]
    only = [parse_assignment(s, "--only") for s in args.only]
    matrix = load_matrix(args.matrix, overrides)
    args.executor = args.executor or matrix.executor
    if args.address and args.executor != "ray":
        raise ConfigError(["--address only applies to --executor ray"], "run_matrix.py")
    if args.detach and args.executor != "slurm":
        raise ConfigError(["--detach only applies to --executor slurm"], "run_matrix.py")
    cells = select(matrix.cells, only)
    if not cells:
        raise ConfigError(
            [f"--only {' '.join(args.only)} selects none of the {len(matrix.cells)} cells"],
            args.matrix,
        )
    preflight.store_root(args.store, matrix.name)
    store = Store(args.store, matrix.name)
    tracking = resolve_tracking(matrix.tracking, args.wandb, args.wandb_project, args.wandb_entity)
    plan = make_plan(matrix, cells, store, set(args.rerun), args.max_cells)
    if args.dry_run:
        _print_plan(plan, args.json)
        return EXIT_OK
    to_run = [p.cell for p in plan.cells if p.action == "run"]
    preflight.shared_inputs(to_run, command is not None, matrix.source)
    preflight.devices(to_run, command is not None, matrix.source)
    workers = _workers(args, matrix, to_run)
    # first: a Ray cluster that cannot be reached writes nothing; and before our signal
    # handlers, since ray.init installs its own SIGTERM handler
    executor = _make_executor(args, command, workers, matrix)
    try:
        store.ensure_writable()
        store.write_matrix_meta(
            matrix.name, matrix.description, matrix.source, matrix.cells, matrix.paired
        )
        labels = cell_labels(matrix.cells, matrix.paired)
        progress = make_progress(quiet=args.quiet, labels=labels)
        warn = (lambda text: err.print(text, markup=False)) if args.quiet else progress.message
        tracker = make_tracker(tracking, store.root, store.matrix_dir, warn)
        if args.report is not None:
            tracker = _PageRefresh(tracker, store.matrix_dir, _report_out(store, args.report))
        try:
            with StopRequest().installed() as stop:
                if matrix.duplicates:
                    progress.message(f"note: {matrix.duplicates} duplicate cell(s) merged")
                if isinstance(executor, LocalProcessExecutor) and workers > 1:
                    progress.message(f"{describe(executor.slots)}; --workers N to change")
                if args.detach:
                    from harness.runner.slurm_submit import submit_detached

                    return submit_detached(plan, executor, progress, err)
                result = run_plan(
                    plan, executor, progress, tracker=tracker, stop=stop, workers=workers
                )
        finally:
            tracker.close()
    finally:
        executor.close()
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=160)  # files and pipes: don't squeeze the axes
    out.print(summary_table(result.rows, labels))
    gone = getattr(executor, "gone", None)
    if gone:  # the cluster went away under the run: what ran is kept, the rest runs on resume
        err.print(f"error: {gone}; start it again and rerun: {_resume_command()}", markup=False)
        return EXIT_FAILED
    code = _finish(result, labels, err)
    if args.report is not None and not _write_report(store, args.report, err):
        return code if code != EXIT_OK else EXIT_FAILED
    return code


def _finish(result: RunResult, labels: dict[str, str], err: Console) -> int:
    if result.stopped:
        ids = ", ".join(c.cell_id for c in result.interrupted)
        what = f"cell(s) {ids} marked interrupted; " if ids else ""
        err.print(
            f"Stopped: {what}completed cells are kept. Resume with:\n  {_resume_command()}",
            markup=False,
        )
        return EXIT_INTERRUPTED
    failed = [(cell, s) for cell, s, _ in result.rows if (s or {}).get("outcome") == "failed"]
    if failed:
        err.print(_failed_line(failed, labels), markup=False)
        return EXIT_FAILED
    return EXIT_OK


def _failed_line(failed: list[tuple[Cell, dict]], labels: dict[str, str]) -> str:
    """The last line after failed cells: the reason (one, when they share it; else the first
    cell's), which cells, and what to do."""
    reasons = [error_reason(s) or "no reason recorded" for _, s in failed]
    ids = [f"{label_of(labels, c)} ({c.cell_id})" for c, _ in failed]
    if len(set(reasons)) == 1:
        where = ids[0] if len(ids) == 1 else f"{ids[0]} and {len(ids) - 1} more"
        what = f"{where}: {reasons[0]}"
    else:
        what = f"first {ids[0]}: {reasons[0]} (the table lists each)"
    return (
        f"{len(failed)} cell(s) failed: {what}; the cell's log tail is error.log_tail in its "
        "summary.json (rerun them with --rerun failed)"
    )


def _workers(args: argparse.Namespace, matrix: Matrix, to_run: list[Cell]) -> int:
    """Cells at once: ``--workers``; with Ray every pending cell (Ray schedules them); else the
    matrix's ``workers:`` (``auto``: ``harness.runner.workers.auto_workers``)."""
    if args.workers:
        return args.workers
    if args.executor in ("ray", "slurm"):
        return max(1, len(to_run))
    if matrix.workers == "auto":
        return auto_workers([c.config for c in to_run])
    return int(matrix.workers)


def _make_executor(
    args: argparse.Namespace, command: list[str] | None, workers: int, matrix: Matrix
) -> Executor:
    if args.executor == "ray":
        from harness.runner.ray_executor import RayExecutor

        return RayExecutor(address=args.address, command=command)
    if args.executor == "slurm":
        from harness.runner.slurm_executor import SlurmExecutor

        folder = Path(args.store) / matrix.name / ".slurm"
        return SlurmExecutor(matrix.slurm, folder, command=command, matrix=matrix.name)
    return LocalProcessExecutor(command=command, workers=workers, warm=not args.cold_start)


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
        + (f", {data['skipped']} skipped by --max-cells" if data["skipped"] else "")
        + (f", {data['duplicates_merged']} duplicates merged" if data["duplicates_merged"] else "")
    )
    for c in data["cells"]:
        prev = f" (was {c['previous']})" if c["previous"] else ""
        axes = ", ".join(f"{k}={v}" for k, v in c["axes"].items())
        print(f"  {c['action']:8} {c['cell_id']}{prev}  {axes}")


def _report_out(store: Store, path: str) -> Path:
    return Path(path) if path else store.matrix_dir / "EXPERIMENTS.md"


class _PageRefresh:
    """The tracker, plus EXPERIMENTS.html rewritten after every finished cell (``--report``), so
    that the page opened from the store with its reload toggle on follows the matrix."""

    def __init__(self, inner: Any, store_dir: Path, report: Path) -> None:
        self.inner, self.store_dir, self.report = inner, store_dir, report

    def on_cell_start(self, *args: Any) -> None:
        self.inner.on_cell_start(*args)

    def on_record(self, *args: Any) -> None:
        self.inner.on_record(*args)

    def on_cell_end(self, cell_id: str, summary: dict[str, Any]) -> None:
        self.inner.on_cell_end(cell_id, summary)
        from reports.html import HTML_FILE, write_html

        # the page is written again after the run, which reports a failure
        with contextlib.suppress(OSError, UserError, ValueError):
            write_html(self.store_dir, self.report.with_name(HTML_FILE))

    def close(self) -> None:
        self.inner.close()


def _write_report(store: Store, path: str, err: Console) -> bool:
    """Write the report (markdown and page) after the run; False (and one line) when it could not
    be written: the run store is complete either way and ``python -m reports`` writes it later."""
    from reports import write_report  # matplotlib: only when a writer is asked
    from reports.html import HTML_FILE, write_html

    out = _report_out(store, path)
    try:
        out = write_report(store.matrix_dir, out)
        write_html(store.matrix_dir, out.with_name(HTML_FILE))
    except (OSError, UserError) as exc:
        err.print(
            f"error: the report could not be written ({exc}); the run store is complete: "
            f"write it with `python -m reports {store.matrix_dir} --out PATH`",
            markup=False,
        )
        return False
    err.print(f"report written to {out} and {out.with_name(HTML_FILE)}", markup=False)
    return True
