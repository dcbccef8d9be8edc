"""Where a cell runs: the ``Executor`` seam and the local one-process-per-cell executor.

The runner only needs to start a cell and then poll, interrupt or kill it; everything else it
learns from the cell's folder. A Ray (or Slurm) executor implements the same two small protocols
and the runner does not change.

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
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

REPO_ROOT = Path(__file__).resolve().parents[2]
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class CellTask:
    """Everything an executor needs to run one cell."""

    cell_id: str
    config_path: Path
    """The resolved cell config (YAML)."""
    cell_dir: Path
    """Where the cell writes its files."""
    log_path: Path
    """Where the cell's stdout and stderr go."""


@dataclass(frozen=True)
class ExitStatus:
    """How a cell process ended."""

    returncode: int | None
    """Exit code; None when it was killed by a signal."""
    signal: int | None = None
    """The signal that killed it, if any."""
    reason: str | None = None
    """Why the process could not be started, when it could not (``StartFailed``)."""

    @property
    def signal_name(self) -> str | None:
        return None if self.signal is None else signal.Signals(self.signal).name


class CellHandle(Protocol):
    """A started cell."""

    def wait(self, timeout: float) -> ExitStatus | None:
        """Wait up to ``timeout`` seconds; the exit status, or None while it still runs."""

    def interrupt(self) -> None:
        """Ask the cell to stop cleanly (it writes an ``interrupted`` summary)."""

    def kill(self) -> None:
        """Stop it now, no clean-up (SIGKILL)."""


class Executor(Protocol):
    """Starts cells."""

    def start(self, task: CellTask) -> CellHandle:
        """Start the cell and return at once."""


class StartFailed:
    """The handle of a cell whose process could not be started (an ``OSError`` from
    ``Executor.start``): it has already ended, and the runner records why as a failed cell."""

    def __init__(self, exc: OSError) -> None:
        self.status = ExitStatus(None, reason=f"the cell command could not be started: {exc}")

    def wait(self, timeout: float) -> ExitStatus:
        return self.status

    def interrupt(self) -> None:
        pass

    def kill(self) -> None:
        pass


class LocalProcessExecutor:
    """Each cell in its own process (and process group) on this machine.

    ``command`` replaces ``[python, -m, cell_module]`` (tests use a fake cell script). The child
    gets its own session, so a terminal Ctrl-C reaches only the runner, which forwards it; and it
    is killed if the runner dies (Linux ``PR_SET_PDEATHSIG``), so no orphan keeps writing into a
    folder that a resumed runner is about to reuse.
    """

    def __init__(
        self,
        cell_module: str = "harness.cell",
        command: list[str] | None = None,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command = list(command) if command else [python, "-m", cell_module]
        self.env = dict(env or {})

    def argv(self, task: CellTask) -> list[str]:
        return [
            *self.command,
            str(task.config_path),
            "--out",
            str(task.cell_dir),
            "--cell-id",
            task.cell_id,
        ]

    def start(self, task: CellTask) -> LocalProcessHandle:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
        with open(task.log_path, "ab") as log:
            proc = subprocess.Popen(
                self.argv(task),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        return LocalProcessHandle(proc)


class LocalProcessHandle:
    """A cell running as a local process group."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float) -> ExitStatus | None:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return ExitStatus(None, -rc) if rc < 0 else ExitStatus(rc)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def interrupt(self) -> None:
        self._signal(signal.SIGINT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGKILL the child when the runner dies (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the runner died before prctl took effect
            os._exit(1)

    return preexec
