"""The sandboxed program's process group: wait for its leader, kill and reap all of it.

While programs run, this process is a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``), so the
orphans a program leaves are ours to kill and wait for; ``end_group`` hands the child its nonce,
waits up to the wall-clock limit, then kills the whole group and reaps every member, even when
the calling thread is interrupted.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
from collections.abc import Iterator

PR_SET_CHILD_SUBREAPER = 36


def _wait(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Wait for the leader to exit without reaping it (so its process group id stays reserved
    while we kill the group); True if it exited within the limit."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): wait reaps, a tiny reuse window
        try:
            proc.wait(timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout_s * 1000))))
    finally:
        os.close(fd)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left in the group
        os.killpg(pgid, signal.SIGKILL)


def _reap_group(pgid: int) -> None:
    """Wait for every killed member of the group (orphans are ours while we are a subreaper):
    when this returns, none of them runs any more, and no zombie is left behind."""
    while True:
        try:
            os.waitpid(-pgid, 0)
        except ChildProcessError:
            return


_subreaper_lock = threading.Lock()
_subreaper_users = 0


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """While programs run, this process adopts their orphans (Linux ``PR_SET_CHILD_SUBREAPER``),
    so that ``_reap_group`` can wait for them instead of leaving them to init."""
    global _subreaper_users

    def set_flag(on: int) -> None:
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, on, 0, 0, 0)
        except (OSError, AttributeError):  # not Linux: orphans go to init, as usual
            pass

    with _subreaper_lock:
        _subreaper_users += 1
        if _subreaper_users == 1:
            set_flag(1)
    try:
        yield
    finally:
        with _subreaper_lock:
            _subreaper_users -= 1
            if _subreaper_users == 0:
                set_flag(0)


def _reap(proc: subprocess.Popen) -> tuple[int, float]:
    if proc.returncode is not None:
        return proc.returncode, 0.0
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def end_group(proc: subprocess.Popen, nonce: str, timeout_s: float) -> tuple[bool, int, float]:
    """Hand over the nonce, wait up to the limit, then kill the group and reap all of it, even
    when this thread is interrupted: (exited in time, exit status, CPU seconds)."""
    exited = False
    try:
        with contextlib.suppress(BrokenPipeError):  # it died at once: its status says why
            assert proc.stdin is not None
            proc.stdin.write(f"{nonce}\n".encode())
            proc.stdin.close()
        exited = _wait(proc, timeout_s)
    finally:
        _kill_group(proc.pid)
        rc, cpu = _reap(proc)
        _reap_group(proc.pid)
    return exited, rc, cpu
