"""Warm cell starts, the runner's side: a client of ``python -m harness.cell.forkserver``.

A cold cell spends seconds importing torch and transformers before its first step. The local
executor can instead start one server per run that has imported them once
(``harness/cell/forkserver.py``) and fork every cell from it. The runner still opens each cell's
``cell.log`` (it passes the file descriptor over a Unix socket in a private temporary folder)
and signals the cell's own process group directly; the server reports the exit status.

Cells start cold instead, automatically, when warm cannot work: not Linux (fork after importing
torch is only safe there), a custom ``--cell-command``, a cell environment that differs from the
server's in more than the per-worker settings, or a server that fails to start, finds CUDA
initialised after its imports, or stops.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.contracts.procs import die_with_parent, signal_group
from harness.runner.task import ExitStatus

SERVER_MODULE = "harness.cell.forkserver"
READY_TIMEOUT_S = 300.0
"""How long the first cell waits for the server's imports (seconds on an idle machine)."""
REPLY_TIMEOUT_S = 60.0
PER_CELL_ENV = ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
"""Variables that may differ between cells (worker slots); any other difference means cold."""


def warm_unavailable(default_command: bool) -> str | None:
    """Why warm starts cannot work here, or None when they can."""
    if not default_command:
        return "--cell-command runs a custom cell command"
    if not sys.platform.startswith("linux"):
        return f"warm starts fork a preloaded server, which needs Linux (this is {sys.platform})"
    if not (hasattr(os, "fork") and hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")):
        return "this Python has no fork() or no Unix-socket descriptor passing"
    return None


class WarmServer:
    """Starts the fork server on first use and asks it for cells; ``failed`` says why it gave up."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.env: dict[str, str] | None = None
        """The environment the server started with: the first cell's, less PER_CELL_ENV."""
        self.proc: subprocess.Popen[bytes] | None = None
        self.failed: str | None = None
        self.folder: Path | None = None

    @property
    def socket_path(self) -> Path:
        assert self.folder is not None
        return self.folder / "server.sock"

    def start(self, argv: list[str], env: dict[str, str], log_path: Path) -> WarmHandle | None:
        """Fork a cell running ``harness.cell`` with ``argv``; None when it must start cold."""
        if self.env is None:
            self.env = _shared(env)
        if _shared(env) != self.env or not self._ready():
            return None
        try:
            return self._request(argv, env, log_path)
        except OSError as exc:
            self.failed = f"the warm-start server stopped ({exc.strerror or exc})"
            return None

    def _ready(self) -> bool:
        if self.failed:
            return False
        if self.proc is None:
            self._launch()
        return not self.failed

    def _launch(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="harness-warm-"))  # mode 0700: ours only
        with open(self.folder / "server.log", "wb") as err:
            self.proc = subprocess.Popen(
                [self.python, "-m", SERVER_MODULE, str(self.socket_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=self.env,
                start_new_session=True,
                preexec_fn=die_with_parent(os.getpid()),
            )
        assert self.proc.stdout is not None
        line, _ = _read_line(self.proc.stdout.fileno(), READY_TIMEOUT_S)
        if line != b"ready":
            try:
                self.proc.wait(timeout=5)  # its stdout closed: it is exiting
                why = "could not start"
            except subprocess.TimeoutExpired:
                why = "did not get ready in time"
            self.failed = f"the warm-start server {why}: {self._server_log_tail()}"

    def _server_log_tail(self) -> str:
        assert self.folder is not None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        try:
            lines = (self.folder / "server.log").read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        return lines[-1].strip() if lines else f"exit status {self.proc and self.proc.returncode}"

    def _request(self, argv: list[str], env: dict[str, str], log_path: Path) -> WarmHandle | None:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(self.socket_path))
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                message = json.dumps({"argv": argv, "env": env, "cwd": os.getcwd()}).encode()
                socket.send_fds(conn, [message[:1]], [fd])
                conn.sendall(message[1:] + b"\n")
            finally:
                os.close(fd)
            reply, rest = _read_line(conn.fileno(), REPLY_TIMEOUT_S)
        except BaseException:
            conn.close()
            raise
        answer = json.loads(reply) if reply else {}
        if "pid" not in answer:
            conn.close()
            self.failed = f"the warm-start server did not start a cell ({answer or 'no reply'})"
            return None
        return WarmHandle(conn, int(answer["pid"]), rest)

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the server exits at EOF
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class WarmHandle:
    """A cell forked by the server: signalled through its process group, its exit status read
    from the server's reply on the cell's connection."""

    enforces_deadline = False

    def __init__(self, conn: socket.socket, pid: int, buffer: bytes = b"") -> None:
        self.conn, self.pid = conn, pid
        self.buffer = buffer  # what arrived after the pid line (the exit line of a quick cell)
        self.status: tuple[int | None, int | None, str | None] | None = None

    def fileno(self) -> int | None:
        return None if self.status else self.conn.fileno()

    def poll(self) -> ExitStatus | None:
        if self.status is None:
            self._read()
        if self.status is None:
            return None
        code, sig, reason = self.status
        return ExitStatus(code, sig, reason=reason)

    def _read(self) -> None:
        while b"\n" not in self.buffer and select.select([self.conn], [], [], 0)[0]:
            try:
                chunk = self.conn.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                lost = "the warm-start server stopped before the cell ended (the cell was killed)"
                self._end(None, None, lost)
                return
            self.buffer += chunk
        if b"\n" in self.buffer:
            reply = json.loads(self.buffer.split(b"\n", 1)[0])
            self._end(reply.get("exit"), reply.get("signal"), None)

    def _end(self, code: int | None, sig: int | None, reason: str | None) -> None:
        self.status = (code, sig, reason)
        self.conn.close()

    def wait(self, timeout: float) -> ExitStatus | None:
        end = time.monotonic() + timeout
        while (status := self.poll()) is None and (left := end - time.monotonic()) > 0:
            select.select([self.conn], [], [], left)
        return status

    def interrupt(self) -> None:
        if self.poll() is None:
            signal_group(self.pid, signal.SIGINT)

    def kill(self) -> None:
        if self.poll() is None:
            signal_group(self.pid, signal.SIGKILL)


def _shared(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in PER_CELL_ENV}


def _read_line(fd: int, timeout: float) -> tuple[bytes | None, bytes]:
    """(one line from ``fd`` without its newline, what came after it) within ``timeout``
    seconds; the line is None on timeout or end of file before a full line."""
    end, data = time.monotonic() + timeout, b""
    while b"\n" not in data:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None, b""
        chunk = os.read(fd, 4096)
        if not chunk:
            return None, b""
        data += chunk
    line, rest = data.split(b"\n", 1)
    return line, rest
