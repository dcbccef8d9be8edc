"""One real run of ``experiments/smoke.yaml`` through ``run_matrix.py``, every write audited.

Built once per session (the ``smoke_run`` fixture in tests/conftest.py) for the tests that read
a store the real runner and the real cell wrote: tests/runner/test_writers.py (who writes each
file) and tests/reports/test_smoke_run.py (the report of a real store). The data is cached
under the run's own temp folder, never in the checkout.

A ``sitecustomize`` on PYTHONPATH installs a ``sys.addaudithook`` in the runner process and in
the cell processes it starts (the executor passes PYTHONPATH on): it logs every open-for-write
and every rename (``os.replace``, how atomic writes land) with the process id.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

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


@dataclass(frozen=True)
class SmokeRun:
    """What the run left: its matrix folder, the runner's pid and output, the write log."""

    matrix_dir: Path
    runner_pid: int
    returncode: int
    output: str
    write_log: Path


def run_smoke(root: Path) -> SmokeRun:
    """Run smoke.yaml (both cells) into ``root / "runs"`` with the write audit on."""
    hooks = root / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(AUDIT)
    log = root / "writes.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hooks), str(REPO)]),
        "WRITE_AUDIT_LOG": str(log),
    }
    store = root / "runs"
    args = ["experiments/smoke.yaml", "--store", str(store), "--quiet"]
    args += ["--set", f"data.cache_dir={root / 'data'}"]
    runner = subprocess.Popen(
        [sys.executable, "run_matrix.py", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = runner.communicate(timeout=600)
    return SmokeRun(store / "smoke", runner.pid, runner.returncode, err + out, log)
