"""Run untrusted Python programs (model-written code) and say how each one ended.

``run_program(source, limits)`` runs one program in a fresh ``python -I -S`` interpreter, the leader
of its own session and process group, in a fresh temporary directory (its cwd, removed after),
with a scrubbed environment, stdin closed and stdout + stderr captured to a file (bounded by the
file-size limit; the tail is kept, with the caller's secret values redacted: ``redact.py``). The
child (``sandbox_child.py``, OS side ``sandbox_confine.py``) confines itself before the program
runs: network and mount namespaces where the kernel permits (a root that holds only the
interpreter, its libraries and the program's directory), no capability at all, root dropped,
resource limits, and a guard as human-eval's ``reliability_guard``. The program then runs in a
process of its own, forked by the child, that holds neither the run's nonce nor the pipe that
reports the verdict: the child (the judge, ``sandbox_judge.py``) alone reports it, and with a
``Check`` runs the tests itself, reaching the program's function through calls that carry plain
data only, so that no exit, patched builtin or forged marker of the program counts as a pass.
Each ``ExecResult`` lists the layers the child read back from inside (``isolation``), since
which ones the OS allows differs between machines; where a layer is missing, the list says what
is not protected.

At the wall-clock limit the whole process group is killed; it is killed when the program ends,
too, so nothing it started outlives it. ``run_many`` runs programs in parallel, at most one per
core this process may use (``os.sched_getaffinity``).

Statuses: ``passed`` (the program ran to its end; with a ``Check``: its tests passed),
``failed`` (an exception, an exit before the end, a failed test, a signal, a resource limit
other than time), ``timeout`` (the wall-clock or CPU-time limit),
``error`` (the sandbox could not be set up, so the program never ran).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.benchmark import sandbox_child, sandbox_confine, sandbox_judge
from harness.benchmark.redact import Redactor
from harness.benchmark.sandbox_group import end_group, subreaper

CHILD = Path(sandbox_child.__file__).resolve()
CONFINE = Path(sandbox_confine.__file__).resolve()
JUDGE = Path(sandbox_judge.__file__).resolve()
"""The child loads both from beside itself (``sandbox_child.CONFINE``, ``JUDGE``): it imports no
harness."""
INTERPRETER_FLAGS = ("-I", "-S")
"""Isolated mode (no PYTHON* variables, no user site, no script directory on sys.path) and no
``site`` at start-up: its ``.pth`` processing (editable installs) costs more than a typical
HumanEval program; the child puts this interpreter's site-packages on sys.path itself."""
SITE_PACKAGES = [p for p in dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))]
INTERPRETER_LIBS = [p for p in (sysconfig.get_config_var("LIBDIR"),) if p]
"""The interpreter's own library directory (libpython, and in conda-like installs the libffi,
libssl, ... its extension modules load): bound read-only in the program's root beside
``sys.path``."""
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
    """Use network + mount namespaces where the kernel permits (False: the unprivileged fallback,
    whose isolation list says what it leaves readable)."""
    drop_root_to: str = "nobody"
    """When started as root, run the program as this user ("" keeps uid 0, still without any
    capability)."""
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
    """The confinement layers that applied, as the child read them back (empty when setup
    failed)."""
    redacted: tuple[str, ...] = ()
    """What was redacted from ``output`` and ``detail`` (the caller's secrets; ``redact.py``)."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """Tests that decide a program's verdict, run by the judge apart from the program
    (``sandbox_judge``): ``passed`` means ``check(candidate)`` returned."""

    entry_point: str
    """The program's function under test; the tests reach it as ``candidate`` (and by name)."""
    test: str
    """Source that defines ``check(candidate)``."""
    context: str = ""
    """Trusted source run first in the tests' namespace (HumanEval: the prompt, for the imports
    and helper functions its tests use), before the program's process is forked: nothing secret
    (the program's process holds it too); the program's code never runs there."""


def _config(limits: SandboxLimits, marker_fd: int, new_root: Path, check: Check | None) -> str:
    return json.dumps(
        {
            "entry_point": check.entry_point if check else None,
            "marker_fd": marker_fd,
            "new_root": str(new_root),
            "home": os.environ.get("HOME", ""),
            "site_packages": SITE_PACKAGES,
            "interpreter_libs": INTERPRETER_LIBS,
            "cpu_s": limits.cpu_limit_s,
            "memory_bytes": limits.memory_bytes,
            "file_size_bytes": limits.file_size_bytes,
            "max_processes": limits.max_processes,
            "namespaces": limits.namespaces,
            "drop_root_to": limits.drop_root_to,
            "guard": limits.guard,
        }
    )


def _read_markers(fd: int, nonce: str) -> tuple[bool, bool, tuple[str, ...]]:
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


def _tail(fh, chars: int, redactor: Redactor) -> tuple[str, int, tuple[str, ...]]:
    """The last ``chars`` characters of the output file, redacted; its size in bytes; what was
    redacted. The window read is wider by the longest secret, so that a secret cut by its start
    is dropped, not kept in part."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    margin = redactor.longest
    start = max(0, size - 4 * (chars + margin))
    fh.seek(start)
    text = fh.read().decode("utf-8", errors="replace")
    if start > 0:
        text = text[margin:]
    text, redacted = redactor.redact(text)
    return (text[-chars:] if len(text) > chars else text), size, redacted


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


def run_program(
    source: str,
    limits: SandboxLimits | None = None,
    redactor: Redactor | None = None,
    check: Check | None = None,
) -> ExecResult:
    """Run ``source`` as an untrusted program under ``limits``; passed: it ran to its end, or
    with ``check``, its tests passed. Its output is kept with the caller's secrets redacted
    (default: ``Redactor.from_environment()``). Never raises for the program's behaviour (only
    for a host that cannot create a temporary directory)."""
    limits = limits or SandboxLimits()
    redactor = redactor or Redactor.from_environment()
    workdir = Path(tempfile.mkdtemp(prefix="sandbox-"))
    new_root = workdir.with_name(workdir.name + ".root")  # the child's mount point for its root
    new_root.mkdir(mode=0o700)
    (workdir / sandbox_child.PROGRAM).write_text(source, encoding="utf-8")
    if check is not None:
        tests = {"entry_point": check.entry_point, "test": check.test}
        (workdir / sandbox_child.CHECK).write_text(json.dumps(tests), encoding="utf-8")
        (workdir / sandbox_child.CONTEXT).write_text(check.context, encoding="utf-8")
    env = {**ENV, "HOME": str(workdir), "TMPDIR": str(workdir)}
    nonce = secrets.token_hex(16)
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    try:
        with subreaper(), tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.Popen(
                    [sys.executable, *INTERPRETER_FLAGS, str(CHILD), _config(limits, write_fd, new_root, check)],
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    env=env,
                    start_new_session=True,
                    pass_fds=(write_fd,),
                )  # fmt: skip
            except OSError as exc:
                return ExecResult("error", f"could not start the sandbox: {exc}", 0.0)
            finally:
                os.close(write_fd)
            exited, rc, cpu = end_group(proc, nonce, limits.timeout_s)
            wall = time.perf_counter() - start
            markers = _read_markers(read_fd, nonce)
            output, out_size, redacted = _tail(out, limits.output_chars, redactor)
    finally:
        os.close(read_fd)
        _remove(workdir)
        new_root.rmdir()
    status, detail = _classify(limits, not exited, rc, cpu, markers, output, out_size)
    return ExecResult(
        status=status,
        detail=detail,
        wall_s=wall,
        returncode=rc if exited else None,
        cpu_s=cpu,
        output=output,
        isolation=markers[2],
        redacted=redacted,
    )


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_many(
    sources: list[str],
    limits: SandboxLimits | None = None,
    workers: int | None = None,
    checks: list[Check | None] | None = None,
) -> list[ExecResult]:
    """Run every program (in parallel, ``workers`` at a time; default one per available core),
    each with its ``checks`` entry (default: none); results in the order of ``sources``."""
    workers = available_cores() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    limits = limits or SandboxLimits()
    redactor = Redactor.from_environment()
    checks = [None] * len(sources) if checks is None else checks
    if len(checks) != len(sources):
        raise ValueError(f"{len(checks)} checks for {len(sources)} programs")
    jobs = list(zip(sources, checks, strict=True))
    if workers == 1 or len(sources) <= 1:
        return [run_program(s, limits, redactor, c) for s, c in jobs]
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(run_program, s, limits, redactor, c) for s, c in jobs]
        return [future.result() for future in futures]
    finally:  # on Ctrl-C: the running programs end (<= their limit), the queued ones never start
        pool.shutdown(wait=True, cancel_futures=True)
