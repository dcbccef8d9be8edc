"""Process helpers shared by the executors: a child that dies with its parent, group signals."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn for a cell (or the warm-start server): asks Linux to SIGKILL it when its
    parent dies, so no orphaned cell keeps writing into a folder that a resumed runner is about
    to reuse, and unblocks every signal (a Ray worker blocks SIGINT, and a child inherits the
    mask: the cell would never see the runner's Ctrl-C). None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def signal_group(pgid: int, sig: int) -> None:
    """Signal a cell's process group; a group that is already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def start_cell_process(argv: list[str], env: dict[str, str], log_path: str) -> subprocess.Popen:
    """A cell command in its own session and process group (killable as a group), stdout and
    stderr appended to ``log_path``, no stdin, dying with this process (``die_with_parent``)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(os.getpid()),
        )
