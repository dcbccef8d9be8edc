"""One writer per run-store file: a real smoke run through the real runner, every write audited.

The run (``tests/smoke_run.py``, shared by the session) logs every open-for-write and every
rename of the runner process and of the cell processes it starts, with the process id. The test
checks the log of one cell against ``harness.contracts.schema.WRITERS``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from harness.contracts.schema import (
    ATTEMPTS_DIR,
    CELL_FILE,
    CONFIG_FILE,
    LOG_FILE,
    MATRIX_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    RESUME_DIR,
    SUMMARY_FILE,
    WRITERS,
)


def _cell_of(matrix_dir: Path, mode: str) -> Path:
    """The folder of the smoke cell with ``attention.mode: mode``."""
    (cell_dir,) = [
        p
        for p in matrix_dir.iterdir()
        if (p / CELL_FILE).is_file()
        and json.loads((p / CELL_FILE).read_text())["axes"] == {"attention.mode": mode}
    ]
    return cell_dir


def _entry(name: str) -> str:
    """The store entry a written name belongs to: an atomic write's temporary file
    (``.summary.json.<random>.tmp``, renamed over the file) counts as the file itself."""
    temp = re.fullmatch(r"\.(.+)\.[^.]+\.tmp", name)
    return temp.group(1) if temp else name


def _process(name: str) -> str:
    """The process that opens ``name`` for writing in a cell that completed, from ``WRITERS``
    (``cell, else runner``: the cell, at an ending it handles)."""
    if name == LOG_FILE:  # the cell's stdout: the executor (runner) opens it, the cell writes
        return "runner"
    return WRITERS[name].split(",")[0]


@pytest.mark.slow
def test_each_run_store_file_has_one_writer(smoke_run):
    assert smoke_run.returncode == 0, smoke_run.output
    store = smoke_run.matrix_dir.parent
    cell_dir = _cell_of(smoke_run.matrix_dir, "causal")
    summary = json.loads((cell_dir / SUMMARY_FILE).read_text())
    assert summary["outcome"] == "completed" and summary["written_by"] == "cell"

    entries: dict[str, set[str]] = defaultdict(set)  # store entry -> processes that wrote it
    writers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for line in smoke_run.write_log.read_text().splitlines():
        pid, kind, target = line.split("\t")
        path = Path(target)
        if path.parent == cell_dir or path.parent == store / "smoke":
            role = "runner" if int(pid) == smoke_run.runner_pid else "cell"
            writers[path.name].append((role, kind))
            entries[_entry(path.name)].add(role)
        elif cell_dir in path.parents:  # inside ckpt/ (its files and its peft/ folder)
            entries[path.relative_to(cell_dir).parts[0]].add(
                "runner" if int(pid) == smoke_run.runner_pid else "cell"
            )

    def roles(name: str, kind: str | None = None) -> set[str]:
        return {r for r, k in writers[name] if kind is None or k == kind}

    assert writers[SUMMARY_FILE] == [("cell", "rename")], "summary.json is written exactly once"
    assert roles(CONFIG_FILE) == roles(CELL_FILE) == roles(MATRIX_FILE) == {"runner"}
    assert roles(METRICS_FILE) == roles(PREDICTIONS_FILE) == {"cell"}
    assert roles(LOG_FILE) == {"runner"}  # the executor opens it as the cell's stdout, once
    assert len(writers[CELL_FILE]) == 2  # at the start, and at the end with the runner's time
    # every entry the run left in the store is in the table, was written by the process the table
    # names and by no other (a writability probe, written and removed, is not a store entry)
    left = {
        n: r
        for n, r in entries.items()
        if (cell_dir / n).exists() or (store / "smoke" / n).exists()
    }
    # a completed cell has removed its resume point (tests/runner/test_resume_kill.py has one),
    # and only a cell rescued by OOM back-off has attempts/ (tests/tracking/test_backoff_run.py)
    listed = set(WRITERS) - {RESUME_DIR, ATTEMPTS_DIR}
    assert set(left) == listed, "a file the table does not list, or one not written"
    assert left == {name: {_process(name)} for name in listed}
    info = json.loads((cell_dir / CELL_FILE).read_text())
    assert info["runner_wall_s"] > 0 and info["axes"] == {"attention.mode": "causal"}
    assert "axes" not in summary and "runner_wall_s" not in summary["timings"]
