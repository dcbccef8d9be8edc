"""One writer per run-store file: a real cell run through the real runner, every write audited.

A ``sitecustomize`` on PYTHONPATH installs a ``sys.addaudithook`` in the runner process and in
the cell process it starts (the executor passes PYTHONPATH on): it logs every open-for-write and
every rename (``os.replace``, how atomic writes land) with the process id. The test then checks
the log against ``harness.contracts.schema.WRITERS``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from harness.contracts.schema import (
    CELL_FILE,
    CONFIG_FILE,
    LOG_FILE,
    MATRIX_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    SUMMARY_FILE,
    WRITERS,
)

from .conftest import REPO

AUDIT = """
import os, sys
_LOG = os.environ.get("WRITE_AUDIT_LOG")
_busy = []
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _hook(event, args):
    if _busy or event not in ("open", "os.rename"):
        return
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE
        )
        if not writes or not isinstance(path, (str, bytes, os.PathLike)):
            return
        kind, target = "open", path
    else:
        kind, target = "rename", args[1]
    _busy.append(1)
    try:
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{os.getpid()}\\t{kind}\\t{os.fsdecode(target)}\\n".encode())
        os.close(fd)
    finally:
        _busy.pop()


if _LOG:
    sys.addaudithook(_hook)
"""


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


def test_each_run_store_file_has_one_writer(tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(AUDIT)
    log = tmp_path / "writes.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hooks), str(REPO)]),
        "WRITE_AUDIT_LOG": str(log),
    }
    store = tmp_path / "runs"
    runner = subprocess.Popen(
        [
            sys.executable,
            "run_matrix.py",
            "experiments/smoke.yaml",
            "--store",
            str(store),
            "--only",
            "attention.mode=causal",
            "--set",
            f"data.cache_dir={tmp_path / 'data'}",
            "--quiet",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = runner.communicate(timeout=300)
    assert runner.returncode == 0, err + out
    (cell_dir,) = [p for p in (store / "smoke").iterdir() if p.is_dir() and p.name != ".locks"]
    summary = json.loads((cell_dir / SUMMARY_FILE).read_text())
    assert summary["outcome"] == "completed" and summary["written_by"] == "cell"

    entries: dict[str, set[str]] = defaultdict(set)  # store entry -> processes that wrote it
    writers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for line in log.read_text().splitlines():
        pid, kind, target = line.split("\t")
        path = Path(target)
        if path.parent == cell_dir or path.parent == store / "smoke":
            role = "runner" if int(pid) == runner.pid else "cell"
            writers[path.name].append((role, kind))
            entries[_entry(path.name)].add(role)
        elif cell_dir in path.parents:  # inside ckpt/ (its files and its peft/ folder)
            entries[path.relative_to(cell_dir).parts[0]].add(
                "runner" if int(pid) == runner.pid else "cell"
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
    assert set(left) == set(WRITERS), "a file the table does not list, or one not written"
    assert left == {name: {_process(name)} for name in WRITERS}
    info = json.loads((cell_dir / CELL_FILE).read_text())
    assert info["runner_wall_s"] > 0 and info["axes"] == {"attention.mode": "causal"}
    assert "axes" not in summary and "runner_wall_s" not in summary["timings"]
