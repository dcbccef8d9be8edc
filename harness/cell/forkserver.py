"""Warm cell starts, the server side: ``python -m harness.cell.forkserver SOCKET``.

The runner starts this process (``harness/runner/warm.py``) once per run. It imports torch,
transformers and every module a cell uses, but never initialises CUDA and runs no torch
operation (so torch has started no thread pool), prints ``ready`` and then forks one child per
request on the Unix socket ``SOCKET``. The child *is* the cell, as isolated as a cold one:

- its own process, session and process group (``setsid``), killed if this server dies;
- stdout and stderr on the log file the runner opened and passed over the socket;
- the runner's environment and working directory for that cell (its thread share and GPU),
  torch's thread count taken from that environment as a fresh interpreter would;
- its own memory budget: ``harness.cell.memory.apply_budget`` sets RLIMIT_DATA in the child, and
  the only pages it shares with the server are the copy-on-write pages of the imports.

Protocol, one connection per cell: the runner sends one JSON line ``{"argv", "env", "cwd"}``
with the log's file descriptor attached (SCM_RIGHTS); the child answers ``{"pid": N}`` once it
leads its own process group, and the server answers ``{"exit": CODE}`` or ``{"signal": N}``
when it has reaped it. The server exits when its stdin closes (the runner is done or gone).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import selectors
import signal
import socket
import sys
import traceback
from dataclasses import dataclass, field

from harness.contracts.procs import die_with_parent

PRELOAD = (
    "torch",
    "transformers",
    "peft",
    "safetensors.torch",
    "PIL.Image",
    "harness.cell.run",
    "harness.cell.attention",
    "harness.cell.checkpoints",
    "harness.data.captcha",
    "harness.data.jsonl",
    "harness.cell.encoding",
    "harness.cell.evaluate",
    "harness.cell.memory",
    "harness.models",
    "harness.contracts.provenance",
    "harness.cell.train",
    "harness.cell.trainable",
)
"""Everything ``python -m harness.cell`` imports on its way to the first training step."""
EXIT_CUDA = 3
LOAD_TIME_PREFIXES = ("OMP_", "GOMP_", "KMP_")
"""OpenMP settings, read once when torch loads its OpenMP runtime (in the server): a child keeps
the server's values, the ones in effect (``OMP_NUM_THREADS`` is applied per cell instead)."""


@dataclass
class Request:
    conn: socket.socket
    data: bytes = b""
    fds: list[int] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m harness.cell.forkserver SOCKET", file=sys.stderr)
        return 2
    # the OpenMP wait policy must be in the environment before torch loads its runtime: warm
    # cells inherit the server's (threads.py explains why PASSIVE is the robust default)
    from harness.cell.threads import prepare_environment

    prepare_environment("auto")
    for name in PRELOAD:
        importlib.import_module(name)
    import torch

    if torch.cuda.is_initialized():  # a fork would inherit a CUDA context it cannot use
        print("CUDA was initialised while importing the cell's modules", file=sys.stderr)
        return EXIT_CUDA
    server = Server(args[0], torch.get_num_threads())
    print("ready", flush=True)
    code = server.serve()
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown of torch & co.: seconds for nothing


class Server:
    def __init__(self, path: str, default_threads: int) -> None:
        self.pid, self.default_threads = os.getpid(), default_threads
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        self.wake_w = wake_w
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "child")
        self.sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        self.children: dict[int, socket.socket] = {}

    def serve(self) -> int:
        while True:
            for key, _ in self.sel.select():
                if key.data == "accept":
                    conn, _ = self.listener.accept()
                    self.sel.register(conn, selectors.EVENT_READ, Request(conn))
                elif key.data == "stdin":
                    if not os.read(sys.stdin.fileno(), 4096):
                        return 0
                elif key.data == "child":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                    self.reap()
                else:
                    self.receive(key.data)

    def receive(self, req: Request) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(req.conn, 1 << 16, 1)
        except OSError:
            data, fds = b"", []
        req.fds += fds
        req.data += data
        if not data or b"\n" in req.data:
            self.sel.unregister(req.conn)
        if not data:  # the runner hung up before the request was complete
            for fd in req.fds:
                os.close(fd)
            req.conn.close()
        elif b"\n" in req.data:
            self.spawn(req)

    def spawn(self, req: Request) -> None:
        if len(req.fds) != 1:
            _send(req.conn, {"error": "the request carried no log file descriptor"})
            req.conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = self.become_cell(req)
            except BaseException:  # the cell's own crash: its traceback goes to its log
                traceback.print_exc()
                code = 1
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        os.close(req.fds[0])
        self.children[pid] = req.conn

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                reply = {"signal": os.WTERMSIG(status)}
            else:
                reply = {"exit": os.waitstatus_to_exitcode(status)}
            with contextlib.suppress(OSError):
                _send(conn, reply)
            conn.close()

    def become_cell(self, req: Request) -> int:
        """In the forked child: detach from the server, take the cell's stdio, environment and
        threads, then run ``harness.cell.run.main``."""
        os.setsid()
        preexec = die_with_parent(self.pid)  # killed if the server dies (Linux)
        if preexec is not None:
            preexec()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.sel.close()
        self.listener.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for conn in self.children.values():
            conn.close()
        request = json.loads(req.data.split(b"\n", 1)[0])
        _send(req.conn, {"pid": os.getpid()})
        req.conn.close()
        log_fd = req.fds[0]
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(devnull)
        os.close(log_fd)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the child's stdin for its lifetime
        sys.stdout = _unbuffered(1, sys.stdout)
        sys.stderr = _unbuffered(2, sys.stderr)
        os.chdir(request["cwd"])
        in_effect = {k: v for k, v in os.environ.items() if k.startswith(LOAD_TIME_PREFIXES)}
        in_effect.pop("OMP_NUM_THREADS", None)
        os.environ.clear()
        os.environ.update({**request["env"], **in_effect})
        self.set_threads()
        import harness.cell.run

        sys.argv = [harness.cell.run.__file__, *request["argv"]]
        try:
            return harness.cell.run.main(request["argv"])
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)

    def set_threads(self) -> None:
        """torch read OMP_NUM_THREADS when the server imported it; a cold cell would read the
        cell's own value, so apply it (or the server's default) now."""
        import torch

        value = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(value) if value.isdigit() and int(value) > 0 else self.default_threads
        torch.set_num_threads(threads)


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _unbuffered(fd: int, old: io.TextIOWrapper) -> io.TextIOWrapper:
    """What ``PYTHONUNBUFFERED=1`` gives a fresh interpreter: text written straight to the fd."""
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding=old.encoding, errors=old.errors, write_through=True)


if __name__ == "__main__":
    sys.exit(main())
