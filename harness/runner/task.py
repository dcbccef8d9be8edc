"""What the runner and every executor agree on: a cell task, how it ended, the two protocols.

The runner only needs to start a cell and then poll, interrupt or kill it; everything else it
learns from the cell's folder. ``executor.py`` (local processes) and ``ray_executor.py`` (Ray
tasks) implement these protocols and the runner does not change.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.contracts.errors import UserError


class ExecutorError(UserError):
    """An executor cannot be used (e.g. Ray missing or unreachable); the message says what to do."""


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
    worker: int = 0
    """The worker slot (0..workers-1) it runs in: picks its thread share and GPU."""
    runtime: dict[str, Any] = field(default_factory=dict)
    """The cell's ``runtime`` config section (resources a remote executor must request)."""
    kill_after_s: float | None = None
    """Seconds from the cell's process start after which it is killed (its ``timeout_s`` plus
    a grace period). Executors whose handles say ``enforces_deadline`` apply it themselves."""

    def argv(self) -> list[str]:
        """The arguments after the cell command."""
        return [str(self.config_path), "--out", str(self.cell_dir), "--cell-id", self.cell_id]


@dataclass(frozen=True)
class ExitStatus:
    """How a cell process ended."""

    returncode: int | None
    """Exit code; None when it was killed by a signal (or the executor lost it)."""
    signal: int | None = None
    """The signal that killed it, if any."""
    timed_out: bool = False
    """The executor killed it for running past ``CellTask.kill_after_s``."""
    reason: str | None = None
    """Why the executor could not start or follow the cell (its command could not start, its
    Ray worker died, the warm-start server stopped); None when the exit status says it all."""
    lost: bool = False
    """The executor lost the cell with the machine it ran on (a Ray node died): the cell did
    not fail, it is recorded `interrupted` and runs again on resume."""

    @property
    def signal_name(self) -> str | None:
        return None if self.signal is None else signal.Signals(self.signal).name


class CellHandle(Protocol):
    """A started cell."""

    enforces_deadline: bool
    """True when the executor kills the cell itself at ``kill_after_s`` from its process start
    (a remote worker, where the cell may queue first); the runner then sets no deadline."""

    def poll(self) -> ExitStatus | None:
        """The exit status, or None while it still runs (never blocks)."""

    def interrupt(self) -> None:
        """Ask the cell to stop cleanly (it writes an ``interrupted`` summary)."""

    def kill(self) -> None:
        """Stop it now, no clean-up (SIGKILL)."""


class Executor(Protocol):
    """Starts cells and waits for them."""

    def start(self, task: CellTask) -> CellHandle:
        """Start the cell and return at once."""

    def wait_any(
        self, handles: Sequence[CellHandle], timeout: float
    ) -> list[tuple[CellHandle, ExitStatus]]:
        """Wait up to ``timeout`` s for any of ``handles`` to end; the ended ones, in the order
        they completed (empty on timeout)."""

    def take_notes(self) -> list[str]:
        """Messages for the user since the last call (e.g. why cells start cold)."""

    def close(self) -> None:
        """Release what the executor holds (servers, cluster connections)."""
