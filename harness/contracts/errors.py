"""The error boundary every command goes through, and the checks of what a user hands it.

A command's ``main`` runs its body through ``run_command``: a known user error prints one line
(what was wrong and how to fix it) and exits 2 for bad input or 1 for a run that failed; a full
disk (``DISK_FULL_ERRNOS``) is one line and exit 1; Ctrl-C exits 130; a closed pipe exits 0;
anything else is a bug and keeps its traceback. Known errors are ``UserError`` and its subclasses
plus the exception classes a command names (``run_command(body, CheckpointError)``), never
``Exception``: a broad ``except`` would hide bugs. Usage, for a new command::

    def main(argv: list[str] | None = None) -> int:
        return run_command(lambda: _main(build_parser().parse_args(argv)), CheckpointError)

``Parser`` is ``argparse.ArgumentParser`` with one-line errors; ``read_text`` reads a file a
user named (readable, a file, UTF-8) and says what is wrong in one line when it cannot.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

MAX_INPUT_BYTES = 64 * 2**20
"""Largest config file ``read_text`` reads: a checkpoint passed by mistake is not loaded whole."""
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
"""OSError numbers of a full disk, a quota or a file-size limit: the environment, not a bug."""


class UserError(Exception):
    """Bad input, named in one line with how to fix it; ``exit_code`` 2 (1: a run that failed)."""

    exit_code = EXIT_BAD_INPUT


class InputError(UserError):
    """A file or directory a user named cannot be used (missing, unreadable, not UTF-8...)."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


def error_line(exc: BaseException) -> str:
    """``error: ...``: the message of a known error (several lines only when it lists several
    problems, as ``ConfigError`` does)."""
    text = str(exc).strip() or type(exc).__name__
    return f"error: {text}"


def run_command(
    body: Callable[[], int], *known: type[BaseException], on_interrupt: str = ""
) -> int:
    """Run a command's body behind the boundary; return its exit status.

    ``known``: exception classes of this command that are user errors besides ``UserError``
    (their ``exit_code`` attribute, else 2). Anything else propagates with its traceback.
    """
    try:
        return body()
    except (UserError, *known) as exc:
        print(error_line(exc), file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_BAD_INPUT))
    except BrokenPipeError:  # e.g. `... | head`: the reader left; nothing is wrong
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_OK
    except OSError as exc:
        if exc.errno not in DISK_FULL_ERRNOS:
            raise
        where = f" while writing {exc.filename}" if exc.filename else ""
        print(
            f"error: {os_reason(exc)}{where} (a full disk, a quota or a file-size limit); free "
            "space, then run the same command again: what was completed is kept",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(on_interrupt or "interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED


class Parser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line (``prog: error: ... (see prog --help)``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def os_reason(exc: OSError) -> str:
    """The short reason of an OSError (``No such file or directory``), without the path."""
    return exc.strerror or type(exc).__name__


def read_text(path: str | os.PathLike[str], what: str = "file") -> str:
    """The text of a file a user named; InputError in one line when it is missing, a
    directory, unreadable, a symlink loop, or not UTF-8."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_INPUT_BYTES and p.is_file():
            raise InputError(
                path,
                f"is {size / 2**20:.0f} MiB, not a {what} (those are a few KB); check the path",
            )
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(path, f"{what} not found; check the path") from None
    except IsADirectoryError:
        raise InputError(path, f"is a directory; pass the {what} itself") from None
    except OSError as exc:
        raise InputError(path, f"cannot read the {what} ({os_reason(exc)})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            path,
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save it as UTF-8",
        ) from None


def writable_dir(path: str | os.PathLike[str], what: str, flag: str) -> Path:
    """``path`` as a directory this process can write into (created if missing), else
    InputError naming ``flag``. Nothing is left behind on failure."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(path, f"is a file, not a folder ({flag} needs a folder for the {what})")
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            path, f"cannot write the {what} here ({os_reason(exc)}); pass a writable {flag}"
        ) from None
    return p


def writable_file(path: str | os.PathLike[str], flag: str) -> Path:
    """``path`` as a file this process may create or replace (its folder may not exist yet),
    else InputError naming ``flag``. Creates nothing."""
    target = Path(path)
    if target.is_dir():
        raise InputError(
            path, f"is a folder ({flag} needs a file path, e.g. {target / 'EXPERIMENTS.md'})"
        )
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(path, f"cannot be written: {parent} is a file, not a folder ({flag})")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(path, f"cannot be written: {parent} is not writable ({flag})")
    return target
