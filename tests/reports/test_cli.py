"""The CLI: good input writes the report; bad input is one line and exit 2, no traceback."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize(
    ("name", "damage", "where"),
    [
        ("summary.json", ("memory", "train", "peak_bytes", "big"), "memory.train.peak_bytes"),
        ("summary.json", ("metrics", "exact_match_k", "3"), "metrics.exact_match_k"),
        ("metrics.jsonl", '{"kind": "train", "step": 1, "loss": "low"}\n', "loss"),
    ],
)
def test_a_value_of_the_wrong_type_makes_a_damaged_cell_not_a_crash(
    small_store, name, damage, where
):
    """A hand-edited or corrupted file is reported as a damaged cell; plots still draw."""
    path = small_store / "c-causal-8" / name
    if name == "summary.json":
        data = json.loads(path.read_text(encoding="utf-8"))
        *keys, last, value = damage
        node = data
        for key in keys:
            node = node[key]
        node[last] = value
        path.write_text(json.dumps(data), encoding="utf-8")
    else:
        path.write_text(damage + path.read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "reports", str(small_store)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    text = (small_store / "EXPERIMENTS.md").read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if "`c-causal-8`" in ln and "incomplete" in ln)
    assert name in line and where in line
