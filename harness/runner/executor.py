"""Where a cell runs: the ``Executor`` seam and the local executor (one process group per cell).

The protocols and records it implements (``CellTask``, ``ExitStatus``, ``CellHandle``,
``Executor``) are in ``task.py`` and re-exported here; the Ray executor (``ray_executor.py``)
implements the same ones and the runner does not change.

Contract with the cell command (``python -m harness.cell CELL.yaml --out DIR --cell-id ID``):
exit 0 after a result (completed, oom, diverged, timeout), 1 after writing a ``failed`` or
``interrupted`` summary, 2 for an invalid config (nothing written), anything else is a crash.
Whenever ``DIR/summary.json`` exists it is the record, whatever the exit code: the runner writes
one only when the cell did not. SIGINT/SIGTERM ask the cell to stop and write an ``interrupted``
summary; the cell enforces ``runtime.timeout_s`` itself and the runner kills it (SIGKILL) only
when it runs well past it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from harness.contracts.paths import with_repo_on_path
from harness.contracts.procs import signal_group, start_cell_process
from harness.runner.task import CellHandle, CellTask, Executor, ExecutorError, ExitStatus
from harness.runner.warm import WarmServer, warm_unavailable
from harness.runner.workers import slot_envs

__all__ = [
    "CellHandle",
    "CellTask",
    "Executor",
    "ExecutorError",
    "ExitStatus",
    "LocalProcessExecutor",
    "LocalProcessHandle",
]

CELL_MODULE = "harness.cell"


class LocalProcessExecutor:
    """Each cell in its own process (and process group) on this machine, up to ``workers`` at once.

    ``command`` replaces ``[python, -m, harness.cell]`` (tests use a fake cell script). The child
    gets its own session, so a terminal Ctrl-C reaches only the runner, which forwards it; and it
    is killed if the runner dies (Linux ``PR_SET_PDEATHSIG``), so no orphan keeps writing into a
    folder that a resumed runner is about to reuse. Each worker slot gets its share of threads
    and its GPU through the environment (``workers.py``). With ``warm=True`` cells are forked
    from a server that has already imported torch and transformers (``warm.py``), where that
    can work; otherwise, and whenever the server is unavailable, they start cold.
    """

    def __init__(
        self,
        cell_module: str = CELL_MODULE,
        command: list[str] | None = None,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        workers: int = 1,
        warm: bool = False,
    ) -> None:
        default = [python, "-m", cell_module]
        self.command = list(command) if command else default
        self.env = dict(env or {})
        self.slots = slot_envs(workers)
        self.notes: list[str] = []
        self.warm: WarmServer | None = None
        if warm:
            why = warm_unavailable(self.command == [python, "-m", CELL_MODULE])
            if why:
                self.notes.append(f"cells start cold: {why}")
            else:
                self.warm = WarmServer(python)

    def base_env(self) -> dict[str, str]:
        """The environment every cell gets (before its slot's additions)."""
        return with_repo_on_path({**os.environ, **self.env, "PYTHONUNBUFFERED": "1"})

    def cell_env(self, task: CellTask) -> dict[str, str]:
        return {**self.base_env(), **self.slots[task.worker % len(self.slots)]}

    def argv(self, task: CellTask) -> list[str]:
        return [*self.command, *task.argv()]

    def start(self, task: CellTask) -> CellHandle:
        env = self.cell_env(task)
        if self.warm is not None:
            handle = self.warm.start(task.argv(), env, task.log_path)
            if self.warm.failed:
                self.notes.append(f"cells start cold: {self.warm.failed}")
                self.warm.close()
                self.warm = None
            if handle is not None:
                return handle
        return LocalProcessHandle(start_cell_process(self.argv(task), env, task.log_path))

    def wait_any(
        self, handles: Sequence[CellHandle], timeout: float
    ) -> list[tuple[CellHandle, ExitStatus]]:
        return wait_any_local(handles, timeout)

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes

    def close(self) -> None:
        if self.warm is not None:
            self.warm.close()
            self.warm = None


def wait_any_local(handles: Sequence[Any], timeout: float) -> list[tuple[CellHandle, ExitStatus]]:
    """Block (in ``select`` on each handle's ``fileno()``, else in short sleeps) until a handle
    ends or ``timeout`` passes."""
    end = time.monotonic() + timeout
    while True:
        done = [(h, s) for h in handles if (s := h.poll()) is not None]
        left = end - time.monotonic()
        if done or left <= 0:
            return done
        fds = [h.fileno() for h in handles]
        if fds and None not in fds:
            select.select(fds, [], [], left)
        else:
            time.sleep(min(left, 0.05))


class LocalProcessHandle:
    """A cell running as a local process group (a child of the runner)."""

    enforces_deadline = False

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self.pidfd = os.pidfd_open(proc.pid)  # Linux >= 5.3: select() wakes at its exit

    @property
    def pid(self) -> int:
        return self.proc.pid

    def fileno(self) -> int | None:
        return self.pidfd

    def poll(self) -> ExitStatus | None:
        rc = self.proc.poll()
        if rc is None:
            return None
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        return ExitStatus(None, -rc) if rc < 0 else ExitStatus(rc)

    def wait(self, timeout: float) -> ExitStatus | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)
        return self.poll()

    def _signal(self, sig: int) -> None:
        if self.proc.returncode is None:  # never signal a reaped (maybe reused) pid
            signal_group(self.proc.pid, sig)

    def interrupt(self) -> None:
        self._signal(signal.SIGINT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
