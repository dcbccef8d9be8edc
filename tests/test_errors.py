"""The error boundary (harness/contracts/errors.py): user errors are one line and their exit status, a
full disk is exit 1, anything else keeps its traceback."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from harness.contracts.errors import InputError, Parser, UserError, read_text, run_command

REPO = Path(__file__).resolve().parents[1]


class Known(Exception):
    """A command's own user error (as loaders' CheckpointError is)."""


class Failed(UserError):
    exit_code = 1


def raising(exc: BaseException):
    def body() -> int:
        raise exc

    return body


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (UserError("bad value; use 3"), 2, "error: bad value; use 3"),
        (Failed("the run failed"), 1, "error: the run failed"),
        (Known("known to this command"), 2, "error: known to this command"),
        (InputError("m.yaml", "not found"), 2, "error: m.yaml: not found"),
        (OSError(errno.ENOSPC, "No space left on device", "/x/y"), 1, "error: No space left"),
        (KeyboardInterrupt(), 130, "interrupted."),
    ],
)
def test_known_endings_are_one_line_and_their_exit_status(capsys, exc, code, line):
    assert run_command(raising(exc), Known) == code
    err = capsys.readouterr().err
    assert err.startswith(line) and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "exc", [ValueError("a bug"), OSError(errno.EIO, "I/O error"), KeyError("k"), Known("x")]
)
def test_anything_else_keeps_its_traceback(exc):
    with pytest.raises(type(exc)):
        run_command(raising(exc))  # Known is not known here


def test_a_closed_pipe_is_not_an_error(monkeypatch):
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # restored after the boundary swaps it
    assert run_command(raising(BrokenPipeError())) == 0


def test_parser_errors_are_one_line_and_exit_2(capsys):
    parser = Parser(prog="tool")
    parser.add_argument("--n", type=int)
    with pytest.raises(SystemExit) as caught:
        parser.parse_args(["--n", "x"])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tool: error: argument --n: invalid int value: 'x' (see tool --help)"]


def test_read_text_names_what_is_wrong(tmp_path):
    (tmp_path / "bad.yaml").write_bytes(b"ok: 1\nname: caf\xe9\n")
    with pytest.raises(InputError, match=r"bad.yaml: not UTF-8 text \(byte 0xe9 on line 2\)"):
        read_text(tmp_path / "bad.yaml", "YAML file")
    with pytest.raises(InputError, match="is a directory; pass the YAML file itself"):
        read_text(tmp_path, "YAML file")
    assert read_text(__file__).startswith('"""The error boundary')


def test_a_report_out_path_that_cannot_be_created_is_one_line_and_exit_2(tmp_path):
    """``--out`` under a folder that cannot be created (/proc refuses new entries): before, the
    writer's FileNotFoundError ended in a traceback."""
    from tests.reports.conftest import build_small_store

    store = build_small_store(tmp_path)
    out = "/proc/no/such/EXPERIMENTS.md"
    for args in ([str(store), "--no-plots"], ["compare", str(store), str(store)]):
        done = subprocess.run(
            [sys.executable, "-m", "reports", *args, "--out", out],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"error: {out}: cannot be written (No such file")
        assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""
