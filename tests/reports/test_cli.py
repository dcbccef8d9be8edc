"""The CLI: good input writes the report; bad input is one line and exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reports.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_cli_writes_report(small_store, capsys):
    assert main([str(small_store), "--no-plots"]) == 0
    assert capsys.readouterr().out.strip() == str(small_store / "EXPERIMENTS.md")


def test_cli_compare_to_stdout(small_store, capsys):
    assert main(["compare", str(small_store), str(small_store)]) == 0
    assert "0 regressions" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "error: no such store directory:"),
        ("empty", "error: empty store:"),
        ("junk", "error: not a run store:"),
    ],
)
def test_cli_bad_input(tmp_path, setup, message):
    target = tmp_path / "store"
    if setup != "missing":
        target.mkdir()
    if setup == "junk":
        (target / "notes.txt").write_text("hello", encoding="utf-8")
    for args in ([str(target)], ["compare", str(target), str(target)]):
        proc = subprocess.run(
            [sys.executable, "-m", "reports", *args], cwd=ROOT, capture_output=True, text=True
        )
        assert proc.returncode == 2
        assert proc.stderr.startswith(message)
        assert len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr
