"""The body of a cell's Slurm job (``run_cell_job``), run by submitit on the compute node.

It starts the same cell command as the local executor (``python -m harness.cell CELL.yaml --out
DIR --cell-id ID``) in its own process group, with the output appended to the cell's log, and
waits for it. The runner's Ctrl-C reaches it through ``STOP_FILE`` in the cell's folder (the
job forwards SIGINT once, as the Ray task does from its control actor). Slurm's own signals
reach the cell directly (SIGTERM at the time limit, at scancel
or preemption: the cell writes its `interrupted` summary, which the runner then types with
Slurm's state). ``JOB_FILE`` in the cell's folder records the job's side of the attempt (job
id, node, when it started, how the cell process ended), so a runner that was not there when the
job ended still knows. A job Slurm requeued (preemption, node failure) starts a fresh attempt in
the same folder, exactly as the runner does locally (``Store.prepare``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.contracts.paths import with_repo_on_path
from harness.contracts.procs import signal_group, start_cell_process
from harness.contracts.schema import CELL_FILE, CONFIG_FILE
from harness.contracts.store_files import write_json

JOB_FILE = "slurm_job.json"
STOP_FILE = "slurm_stop"
"""Written by the runner (Ctrl-C): the job body sends the cell SIGINT, once."""
POLL_S = 0.5


def run_cell_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one cell to its end inside its Slurm job; the exit status as a dict."""
    for sig in (signal.SIGTERM, signal.SIGUSR2, signal.SIGCONT):
        # the job's own process only waits: the cell gets Slurm's signals and answers them
        # (submitit's default USR2 handler would end the job before the cell could)
        signal.signal(sig, _ignore)
    cell_dir = Path(spec["cell_dir"])
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if restarts:
        _fresh_attempt(cell_dir, spec["cell_id"])
    record: dict[str, Any] = {
        "job_id": _job_id(),
        "node": socket.gethostname(),
        "restarts": restarts,
        "started_unix": time.time(),
    }
    write_json(cell_dir / JOB_FILE, record)
    command = spec["command"] or [sys.executable, "-m", "harness.cell"]
    env = with_repo_on_path({**os.environ, "PYTHONUNBUFFERED": "1"})
    proc = start_cell_process([*command, *spec["argv"]], env, spec["log_path"])
    kill_at = time.monotonic() + spec["kill_after_s"] if spec.get("kill_after_s") else None
    timed_out = interrupted = False
    while True:
        try:
            rc = proc.wait(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            pass
        if not interrupted and (cell_dir / STOP_FILE).exists():
            interrupted = True  # the runner's Ctrl-C: the cell writes its `interrupted` summary
            signal_group(proc.pid, signal.SIGINT)
        if kill_at and time.monotonic() >= kill_at and not timed_out:
            timed_out = True  # the cell ran well past runtime.timeout_s and did not stop
            signal_group(proc.pid, signal.SIGKILL)
    result = {
        "returncode": rc if rc >= 0 else None,
        "signal": -rc if rc < 0 else None,
        "timed_out": timed_out,
    }
    write_json(cell_dir / JOB_FILE, {**record, **result, "ended_unix": time.time()})
    return result


def _ignore(signum: int, frame: Any) -> None:
    pass


def _job_id() -> str:
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array:
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return os.environ.get("SLURM_JOB_ID", "")


def _fresh_attempt(cell_dir: Path, cell_id: str) -> None:
    """A requeued job: clear the last attempt as the runner would, keeping what it wrote."""
    from harness.runner.store import Store

    kept = {}
    for name in (CONFIG_FILE, CELL_FILE):
        with contextlib.suppress(OSError):
            kept[name] = (cell_dir / name).read_bytes()
    Store(cell_dir.parent.parent, cell_dir.parent.name).prepare(cell_id)
    for name, data in kept.items():
        (cell_dir / name).write_bytes(data)
