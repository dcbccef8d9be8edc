"""CLI: ``python -m reports STORE [--out PATH] [--no-plots] [--html [PATH]]`` and
``python -m reports compare BEFORE AFTER [--out PATH] [--html [PATH]]``.

Bad input (missing directory, not a run store, empty store, an unwritable ``--out``) prints one
line and exits 2; a damaged cell is listed in the report, not an error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from harness.contracts.errors import (
    DISK_FULL_ERRNOS,
    InputError,
    Parser,
    os_reason,
    run_command,
    writable_file,
)
from reports.before_after import compare_stores, write_comparison
from reports.writer import write_report


def _report_parser() -> Parser:
    p = Parser(
        prog="python -m reports",
        description="Write EXPERIMENTS.md (and plots) from a run store. "
        "Use `python -m reports compare BEFORE AFTER` to diff two stores.",
    )
    p.add_argument("store", help="run store directory, e.g. runs/attention")
    p.add_argument("--out", help="markdown path (default: STORE/EXPERIMENTS.md)")
    p.add_argument("--no-plots", action="store_true", help="skip the matplotlib plots")
    p.add_argument(
        "--html",
        nargs="?",
        const="",
        metavar="PATH",
        help="also write the self-contained page (default PATH: EXPERIMENTS.html beside the markdown)",
    )
    return p


def _compare_parser() -> Parser:
    p = Parser(
        prog="python -m reports compare",
        description="Compare two runs or stores (before -> after); flags regressions.",
    )
    p.add_argument("before", help="run store (or cell directory's store) before the change")
    p.add_argument("after", help="run store after the change")
    p.add_argument("--out", help="markdown path (default: print to stdout)")
    p.add_argument(
        "--html",
        nargs="?",
        const="",
        metavar="PATH",
        help="also write the before/after page (default PATH: AFTER/COMPARISON.html)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (bad input: one line, exit 2; ``harness.contracts.errors``)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    return run_command(lambda: _main(args_list))


def _main(args_list: list[str]) -> int:
    if args_list[:1] == ["compare"]:
        args = _compare_parser().parse_args(args_list[1:])
        if args.out:
            writable_file(args.out, "--out")
        if args.html:
            writable_file(args.html, "--html")
        if args.out:
            print(_writing(args.out, lambda: write_comparison(args.before, args.after, args.out)))
        else:
            print(compare_stores(args.before, args.after), end="")
        if args.html is not None:
            from reports.html.compare import write_comparison_html

            page = args.html or f"{args.after}/COMPARISON.html"
            where = sys.stdout if args.out else sys.stderr  # stdout: the markdown alone
            print(write_comparison_html(args.before, args.after, page), file=where)
    else:
        args = _report_parser().parse_args(args_list)
        if args.out:
            writable_file(args.out, "--out")
        if args.html:
            writable_file(args.html, "--html")
        out = args.out or f"{args.store}/EXPERIMENTS.md"
        md = _writing(out, lambda: write_report(args.store, args.out, plots=not args.no_plots))
        print(md)
        if args.html is not None:
            from reports.html import HTML_FILE, write_html

            page = args.html or md.with_name(HTML_FILE)
            print(_writing(str(page), lambda: write_html(args.store, page)))
    return 0


T = TypeVar("T")


def _writing(out: str, write: Callable[[], T]) -> T:
    """``write()``; an OSError from it is the output path's (the store's are ResultsError): one
    line naming ``out``, exit 2 (a full disk stays the boundary's exit 1)."""
    try:
        return write()
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise
        at = f" at {exc.filename}" if exc.filename and str(exc.filename) != out else ""
        raise InputError(
            out, f"cannot be written ({os_reason(exc)}{at}); pass --out a path in a writable folder"
        ) from None


if __name__ == "__main__":
    sys.exit(main())
