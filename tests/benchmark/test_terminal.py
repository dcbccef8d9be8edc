"""The other long-running commands in a real pseudo-terminal, as a person runs them: `benchmark`
(rich table, progress) and `python -m reports` (plots). The runner's own pty tests are in
tests/runner/test_pty.py. Nothing is timed; an 80-column terminal must stay readable."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect

from tests.benchmark.builders import dylora_trained, write_dylora_single
from tests.reports.conftest import build_small_store

REPO = Path(__file__).resolve().parents[2]
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-HJKSTfhl]|\r")
"""Cursor moves, erases and carriage returns: they separate a live display's redrawn frames."""
STYLE = re.compile(r"\x1b\[[0-9;]*m|\x1b\][^\x07]*\x07")
BAR = "━"
WIDTH = 80


def run_in_terminal(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """``python ARGS`` in an 80x24 pty, to the end; (exit status, what it showed as text)."""
    full = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES", "NO_COLOR"}}
    full.update({"TERM": "xterm-256color", "PYTHONPATH": str(REPO), **(env or {})})
    child = pexpect.spawn(
        sys.executable,
        args,
        cwd=str(REPO),
        env=full,
        dimensions=(24, WIDTH),
        encoding="utf-8",
        codec_errors="replace",
        timeout=900,
    )
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, STYLE.sub("", CONTROL.sub("\n", child.before or ""))


def assert_readable(text: str) -> None:
    """No traceback, and every frame of a progress bar fits the terminal (a bar wider than the
    terminal wraps and each redraw then leaves a stale line behind)."""
    assert "Traceback" not in text, text
    too_wide = [line for line in text.splitlines() if BAR in line and len(line) > WIDTH]
    assert not too_wide, too_wide


def test_benchmark_in_a_terminal(tmp_path, base_dir, data_dir):
    model = tmp_path / "best_model"
    write_dylora_single(model, dylora_trained(base_dir), base_dir)
    out = tmp_path / "report.md"
    code, text = run_in_terminal(
        [
            "-m",
            "harness.benchmark",
            "--trained_model",
            str(model),
            "--data",
            str(data_dir / "qa.jsonl"),
            "--max_samples",
            "2",
            "--max_new_tokens",
            "3",
            "--output",
            str(out),
        ],
        env={"OMP_NUM_THREADS": "1"},
    )
    assert code == 0, text
    assert_readable(text)
    assert any(BAR in line for line in text.splitlines()), "no progress bar was shown"
    assert "samples/s" in text and "ETA" in text  # the rate and the time left
    assert "exact match" in text and "trained" in text and "base" in text  # the rich table
    assert out.is_file() and out.with_suffix(".json").is_file()


def test_reports_with_plots_in_a_terminal(tmp_path):
    store = build_small_store(tmp_path)
    out = tmp_path / "EXPERIMENTS.md"
    code, text = run_in_terminal(["-m", "reports", str(store), "--out", str(out)])
    assert code == 0, text
    assert_readable(text)
    assert str(out.name) in text
    plots = sorted(p.name for p in out.parent.glob("EXPERIMENTS_plots/*.png"))
    assert plots, "the report drew no plots"


def test_bad_input_in_a_terminal_is_one_line(tmp_path):
    code, text = run_in_terminal(
        ["-m", "harness.benchmark", "--trained_model", str(tmp_path / "nope")]
    )
    assert code == 2
    assert_readable(text)
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), lines


def test_a_log_gets_one_line_per_evaluation_with_its_rate(tmp_path, base_dir, data_dir):
    from tests.benchmark.builders import run_cli

    done = run_cli(
        "--trained_model",
        str(base_dir),
        "--no_compare",
        "--data",
        str(data_dir / "qa.jsonl"),
        "--max_new_tokens",
        "2",
        "--output",
        str(tmp_path / "r.md"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("trained: qa on 6 samples:"))
    assert re.search(r": 6 samples in [0-9.]+ s \([0-9.]+ samples/s\)$", line), line
