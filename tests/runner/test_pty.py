"""``run_matrix.py`` in a real pseudo-terminal: the live display from start to end, and Ctrl-C.

The runner sees a terminal here (``isatty``), so it draws rich's live display, exactly as for a
person at a shell; pipes (every other CLI test) get plain lines instead. Timeouts are generous
and nothing is timed: a loaded 2-core machine only makes these slower.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pexpect
import pytest
import yaml

from .conftest import FAKE_COMMAND, REPO, write_matrix

CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-HJKSTfhl]|\r")
"""Cursor moves, erases and carriage returns: they separate the display's redrawn frames."""
STYLE = re.compile(r"\x1b\[[0-9;]*m|\x1b\][^\x07]*\x07")
BAR = "━"
FAKE = ["alpha", "bravo", "charlie"]


def terminal_env() -> dict[str, str]:
    """The environment of an interactive terminal, whatever the test runner's is."""
    drop = {"COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["TERM"] = "xterm-256color"
    return env


class Terminal:
    """``run_matrix.py ARGS`` in a pty of ``width`` columns; what it showed, as plain text."""

    def __init__(self, args: list[str], width: int, height: int = 40) -> None:
        self.width, self.raw = width, ""
        self.child = pexpect.spawn(
            sys.executable,
            [str(REPO / "run_matrix.py"), *args],
            cwd=str(REPO),
            env=terminal_env(),
            dimensions=(height, width),
            encoding="utf-8",
            codec_errors="replace",
        )

    def text(self) -> str:
        return STYLE.sub("", CONTROL.sub("\n", self.raw))

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.text().splitlines() if line.strip()]

    def _read(self) -> bool:
        try:
            self.raw += self.child.read_nonblocking(65536, timeout=1)
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            return False
        return True

    def wait_for(self, pattern: str, timeout: float = 300) -> re.Match:
        end = time.monotonic() + timeout
        while not (found := re.search(pattern, self.text(), re.M)):
            if not self._read() or time.monotonic() > end:
                raise AssertionError(f"never showed {pattern!r}; it showed:\n{self.text()[-4000:]}")
        return found

    def finish(self, timeout: float = 600) -> int:
        end = time.monotonic() + timeout
        while self._read():
            if time.monotonic() > end:
                self.child.kill(9)
                raise AssertionError(f"still running after {timeout}s:\n{self.text()[-4000:]}")
        self.child.wait()
        return self.child.exitstatus

    def assert_fits(self) -> None:
        """Every display line (a bar, or a finished cell's line) fits the terminal's width."""
        shown = [ln for ln in self.lines() if BAR in ln or re.match(r"\s*(\d+|-)/\d+ \w", ln)]
        assert shown
        too_long = [ln for ln in shown if len(ln) > self.width]
        assert not too_long, too_long


def running_row(label: str, total: int) -> str:
    """A running cell's row: its label, a bar, step/total, its loss."""
    return rf"{re.escape(label)}\s+[{BAR}╸╺ ]+\s*\d+/{total}\s+loss"


def real_matrix(tmp_path: Path) -> Path:
    """smoke.yaml's tiny cells, three attention variants (a paired axis)."""
    raw = yaml.safe_load((REPO / "experiments" / "smoke.yaml").read_text())
    raw["name"] = "pty"
    raw["base"]["data"]["cache_dir"] = str(tmp_path / "data")
    raw["matrix"] = {
        "attention": [
            {"attention.mode": "causal", "attention.impl": "sdpa"},
            {"attention.mode": "prefix_bidirectional", "attention.impl": "sdpa"},
            {"attention.mode": "prefix_bidirectional", "attention.impl": "eager_dense"},
        ]
    }
    path = tmp_path / "pty.yaml"
    path.write_text("# python run_matrix.py pty.yaml\n" + yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.slow
def test_three_real_cells_run_to_the_end_in_an_80_column_terminal(tmp_path):
    store = tmp_path / "runs"
    term = Terminal([str(real_matrix(tmp_path)), "--store", str(store)], width=80)
    assert term.finish() == 0, term.text()[-4000:]
    text = term.text()
    assert "Traceback" not in text
    labels = ["causal·sdpa", "prefix·sdpa", "prefix·eager"]
    for label in labels:
        assert re.search(running_row(label, 4), text), label
        assert re.search(rf"^[123]/3 completed  {re.escape(label)}  exact match", text, re.M)
    assert re.search(rf"cells\s+{BAR}+\s+3/3 done", text)
    assert "matrix summary" in text
    cells = sorted(p.name for p in (store / "pty").iterdir() if not p.name.startswith("."))
    cells.remove("matrix.json")
    assert len(cells) == 3
    for cell_id in cells:
        assert re.search(rf"^ ?{cell_id}\s+\S.*completed", text, re.M), cell_id
    term.assert_fits()


def fake_args(tmp_path: Path, cells: list[str], steps: int = 20) -> list[str]:
    """The fake cell (tests/runner/fake_cell.py): ``hang_*`` cells run until they are stopped."""
    matrix = write_matrix(tmp_path / "m.yaml", cells, steps=steps, step_ms=20)
    return [str(matrix), "--store", str(tmp_path / "runs"), "--cell-command", FAKE_COMMAND]


def test_fake_cells_run_to_the_end_in_a_wide_terminal(tmp_path):
    term = Terminal(fake_args(tmp_path, FAKE), width=160)
    assert term.finish() == 0, term.text()[-4000:]
    text = term.text()
    for i, label in enumerate(FAKE):
        assert re.search(running_row(label, 20), text), label
        assert re.search(rf"^{i + 1}/3 completed  {label}  exact match 50.0%", text, re.M)
    assert "3/3 done" in text and "matrix summary" in text
    term.assert_fits()


def _outcomes(store: Path) -> dict[str, str]:
    out = {}
    for summary in store.glob("fake/*/summary.json"):
        info = json.loads((summary.parent / "cell.json").read_text())
        out[info["axes"]["data.question"]] = json.loads(summary.read_text())["outcome"]
    return out


@pytest.mark.parametrize("width", [80, 160])
def test_ctrl_c_in_the_middle_of_a_cell(tmp_path, width):
    term = Terminal(fake_args(tmp_path, ["alpha", "hang_bravo", "charlie"]), width=width)
    term.wait_for(r"^1/3 completed  alpha", timeout=300)
    term.wait_for(running_row("hang_bravo", 20).replace(r"\d+/", r"[1-9]\d*/"), timeout=300)
    term.child.send("\x03")  # Ctrl-C: the terminal sends SIGINT to the runner
    assert term.finish() == 130, term.text()[-4000:]
    text = term.text()
    assert "Traceback" not in text
    assert re.search(r"^-/3 interrupted  hang_bravo  .*at step \d+/20", text, re.M)
    assert re.search(rf"cells\s+{BAR}[{BAR}╸╺ ]*\s+1/3 done · 1 interrupted", text)
    assert "2/3 done" not in text and "3/3 done" not in text
    assert re.search(r"hang_bravo\s+interrupted", text)  # the summary table
    assert "Resume with:" in text and "run_matrix.py" in text.split("Resume with:")[1]
    assert _outcomes(tmp_path / "runs") == {"alpha": "completed", "hang_bravo": "interrupted"}
    term.assert_fits()
