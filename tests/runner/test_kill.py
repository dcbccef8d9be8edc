"""``kill -9`` of the runner at random moments, resumed each time: nothing completed is lost or
run twice, every cell ends with exactly one summary, and every killed attempt's log is kept.

The fake cell records each start outside the store (``FAKE_CELL_STARTS``: cell id and pid), so
the test counts attempts without trusting the store it checks.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import FAKE_COMMAND, REPO, write_matrix

KILLS = 10
SEED = 10
CELLS = 6
DELAY_S = (0.2, 1.2)
"""Each runner is killed this long after it started (uniform, seeded)."""
QUIET_S = 0.5
"""After a kill, nothing may be written for this long (a cell step takes 60 ms)."""


def _runner(matrix: Path, store: Path, starts: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "run_matrix.py",
            str(matrix),
            "--store",
            str(store),
            "--quiet",
            "--cell-command",
            FAKE_COMMAND,
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "FAKE_CELL_STARTS": str(starts)},
    )


def _sizes(store: Path) -> dict[str, int]:
    """Size of every file in every cell folder."""
    return {str(p): p.stat().st_size for d in _cell_dirs(store) for p in d.rglob("*")}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has stopped running


def _starts(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(c, int(p)) for c, p in (line.split() for line in path.read_text().splitlines())]


def _cell_dirs(store: Path) -> list[Path]:
    root = store / "fake"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _logs(cell_dir: Path) -> list[Path]:
    return [p for p in cell_dir.iterdir() if p.name == "cell.log" or p.name.startswith("cell.log.")]


def _check(store: Path, starts: list[tuple[str, int]], done: dict[str, tuple[int, bytes]]) -> None:
    """The invariants after every kill; ``done`` (cell id -> summary mtime and bytes when first
    seen) grows as cells complete."""
    per_cell = Counter(cell for cell, _ in starts)
    for cell_dir in _cell_dirs(store):
        cell = cell_dir.name
        names = {p.name for p in cell_dir.iterdir()}
        assert not any(n.startswith("summary.json.") for n in names), names  # none rerun
        logs = _logs(cell_dir)
        lines = sum(p.read_text().count("starting") for p in logs)
        assert all(p.read_text().count("starting") <= 1 for p in logs)  # one attempt per log
        assert lines <= per_cell[cell] <= len(logs), (cell, lines, per_cell[cell], len(logs))
        summary = cell_dir / "summary.json"
        if not summary.exists():
            assert cell not in done, f"{cell}: a completed cell lost its summary"
            continue
        record = (summary.stat().st_mtime_ns, summary.read_bytes())
        assert done.setdefault(cell, record) == record, f"{cell}: its summary was rewritten"
        last_pid = [pid for c, pid in starts if c == cell][-1]
        data = json.loads(record[1])
        assert data["outcome"] == "completed"
        assert data["provenance"]["pid"] == last_pid, f"{cell} started again after completing"


@pytest.mark.slow
def test_the_runner_killed_at_10_random_moments_and_resumed_loses_nothing(tmp_path):
    rng = random.Random(SEED)
    matrix = write_matrix(tmp_path / "m.yaml", [f"c{i}" for i in range(CELLS)], steps=5, step_ms=60)
    store, starts_log = tmp_path / "runs", tmp_path / "starts.log"
    done: dict[str, tuple[int, bytes]] = {}
    cut_short = 0
    for _ in range(KILLS):
        before = len(_starts(starts_log))
        runner = _runner(matrix, store, starts_log)
        time.sleep(rng.uniform(*DELAY_S))
        runner.send_signal(signal.SIGKILL)
        runner.communicate(timeout=30)
        starts = _starts(starts_log)
        files = _sizes(store)
        time.sleep(QUIET_S)
        assert _sizes(store) == files, "a cell kept writing after its runner was killed"
        running = [pid for _, pid in starts if _alive(pid)]
        deadline = time.monotonic() + 10
        while running and time.monotonic() < deadline:  # PR_SET_PDEATHSIG: it dies with it
            time.sleep(0.05)
            running = [pid for pid in running if _alive(pid)]
        assert not running, f"cell processes outlived their runner: {running}"
        if len(starts) > before:  # this runner started a cell: did the kill cut it short?
            cut_short += not (store / "fake" / starts[-1][0] / "summary.json").exists()
        _check(store, starts, done)
    final = _runner(matrix, store, starts_log)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    starts = _starts(starts_log)
    _check(store, starts, done)
    cells = _cell_dirs(store)
    assert len(cells) == CELLS and len(done) == CELLS  # every cell: exactly one summary
    attempts = sum(len(_logs(d)) for d in cells)  # one log per attempt, all kept
    assert attempts - CELLS >= len(starts) - CELLS >= cut_short
    print(
        f"\nkill test: {KILLS} kills, {CELLS} cells, {attempts - CELLS} killed attempts rerun "
        f"(their logs kept as cell.log.N; {len(starts) - CELLS} had started the cell process, "
        f"{cut_short} were killed mid-cell), no completed cell ran twice"
    )
