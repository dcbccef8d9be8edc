"""One writer per run-store file: a real cell run through the real runner, every write audited.

A ``sitecustomize`` on PYTHONPATH installs a ``sys.addaudithook`` in the runner process and in
the cell process it starts (the executor passes PYTHONPATH on): it logs every open-for-write and
every rename (``os.replace``, how atomic writes land) with the process id. The test then checks
the log against ``harness.contracts.schema.WRITERS``.
"""

from __future__ import annotations

import json
import os
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

    writers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for line in log.read_text().splitlines():
        pid, kind, target = line.split("\t")
        path = Path(target)
        if path.parent == cell_dir or path.parent == store / "smoke":
            role = "runner" if int(pid) == runner.pid else "cell"
            writers[path.name].append((role, kind))

    def roles(name: str, kind: str | None = None) -> set[str]:
        return {r for r, k in writers[name] if kind is None or k == kind}

    assert writers[SUMMARY_FILE] == [("cell", "rename")], "summary.json is written exactly once"
    assert roles(CONFIG_FILE) == roles(CELL_FILE) == roles(MATRIX_FILE) == {"runner"}
    assert roles(METRICS_FILE) == roles(PREDICTIONS_FILE) == {"cell"}
    assert roles(LOG_FILE) == {"runner"}  # the executor opens it as the cell's stdout, once
    assert len(writers[CELL_FILE]) == 2  # at the start, and at the end with the runner's time
    documented = {name: WRITERS[name] for name in (CONFIG_FILE, CELL_FILE, METRICS_FILE)}
    assert documented == {CONFIG_FILE: "runner", CELL_FILE: "runner", METRICS_FILE: "cell"}
    info = json.loads((cell_dir / CELL_FILE).read_text())
    assert info["runner_wall_s"] > 0 and info["axes"] == {"attention.mode": "causal"}
    assert "axes" not in summary and "runner_wall_s" not in summary["timings"]
