"""The sandbox child after its setup: the program in one process, the verdict in another.

Loaded by path by ``sandbox_child.py`` once it has confined itself (standard library only). The
child forks: the **program process** runs the program; the **judge** (the child itself) decides
the verdict and alone can report it. Before any program code runs, the program process closes the
marker pipe, the tests' file and stdin; the judge reads the run's nonce from stdin only after the
fork. So the program's process never holds the nonce nor a channel to the parent, and cannot reach
the judge's memory either: the judge is not dumpable (no ptrace, no ``/proc/PID/mem`` or ``fd``
for a process without ``CAP_SYS_PTRACE``, and the program has no capability).

Without tests, the program process tells the judge when the program ran to its end (``RAN`` on
its reply pipe), the verdict such a program asks for; a program can always claim it, as it could
always just end. With tests (``sandbox.Check``), the judge runs them in its own namespace: their
context (trusted code: HumanEval's prompt) and ``check(candidate)``, where ``candidate`` (and the
entry point's name) sends each call's arguments to the program process and gets back the result
as plain data (``encode``/``decode``: exact ``None``, ``bool``, ``int``, ``float``, ``complex``,
``str``, ``bytes``, ``list``, ``tuple``, ``dict``, ``set``, ``frozenset``; nothing else crosses,
so no object with its own ``__eq__``). The judge writes ``NONCE P`` only when ``check`` returned:
an exit, a signal or a patched builtin in the program process cannot skip or fake the tests.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import select
import signal
import struct
import sys
import traceback

_fork, _kill = os.fork, os.kill  # kept before the guard disables them
RAN = "ran"
"""The program process's first message: the program ran to its end (its functions defined)."""
HEADER = struct.Struct(">I")
_SCALARS = (type(None), bool, int, float, str)
_TAGGED = {tuple: "tuple", set: "set", frozenset: "frozenset"}
_MAKERS = {"tuple": tuple, "set": set, "frozenset": frozenset}


def encode(value):
    """Plain data as JSON-ready values (lists as arrays, other containers tagged); a value of
    any other type (a subclass included) raises TypeError."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        return [encode(v) for v in value]
    if kind in _TAGGED:
        return {_TAGGED[kind]: [encode(v) for v in value]}
    if kind is dict:
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is complex:
        return {"complex": [value.real, value.imag]}
    raise TypeError(
        f"a {kind.__qualname__} is not plain data (None, bool, int, float, complex, str, "
        "bytes, list, tuple, dict, set, frozenset): it cannot cross to the tests"
    )


def decode(item):
    """The inverse of ``encode``; anything else raises (TypeError, ValueError, KeyError)."""
    if isinstance(item, list):
        return [decode(v) for v in item]
    if not isinstance(item, dict):
        return item
    ((tag, body),) = item.items()
    if tag == "dict":
        return {decode(k): decode(v) for k, v in body}
    if tag == "bytes":
        return bytes.fromhex(body)
    if tag == "complex":
        real, imag = body
        return complex(float(real), float(imag))
    if not isinstance(body, list):
        raise TypeError(f"{tag} body is not a list")
    return _MAKERS[tag](decode(v) for v in body)


def send(fd: int, message) -> None:
    data = json.dumps(message).encode()
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _readable(fd: int, pidfd: int | None) -> bool:
    """Wait for data on ``fd``; False when the process behind ``pidfd`` ended first with nothing
    sent (even if a process it started still holds the pipe open)."""
    if pidfd is None:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    ready = {ready_fd for ready_fd, _ in poller.poll()}
    return fd in ready


def _read_exact(fd: int, size: int, pidfd: int | None) -> bytes | None:
    chunks, left = [], size
    while left:
        if not _readable(fd, pidfd):
            return None
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, pidfd: int | None = None):
    """The next message, or None at end of file (the other process ended: ``pidfd``)."""
    head = _read_exact(fd, HEADER.size, pidfd)
    if head is None:
        return None
    body = _read_exact(fd, HEADER.unpack(head)[0], pidfd)
    return None if body is None else json.loads(body)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _program(
    source: bytes, filename: str, entry_point: str | None, requests: int, replies: int
) -> None:
    """The program process: run the program, say it ran, then answer the tests' calls."""
    namespace = {"__name__": "__sandbox__", "__builtins__": builtins}
    try:
        exec(compile(source, filename, "exec"), namespace)
        _flush()
        send(replies, RAN)
        while entry_point is not None and (request := receive(requests)) is not None:
            try:
                if entry_point not in namespace:
                    raise NameError(f"name {entry_point!r} is not defined")
                args, kwargs = decode(request)
                reply = {"value": encode(namespace[entry_point](*args, **kwargs))}
            except Exception as exc:  # the tests see it raised; SystemExit & co. end the program
                reply = {"raised": [type(exc).__name__, _arguments(exc)]}
            _flush()
            send(replies, reply)
    except BaseException:  # the program's own failure, SystemExit included: it did not finish
        traceback.print_exc()
        _flush()
        os._exit(1)
    _flush()
    os._exit(0)


def _arguments(exc: Exception) -> list:
    """The exception's arguments as plain data (else its message), for ``_raised``."""
    try:
        return encode(list(exc.args))
    except Exception:
        return [str(exc)]


class ProgramEnded(BaseException):
    """The program process ended while the tests waited for it (not an Exception: tests that
    catch exceptions cannot swallow it)."""


def _raised(name: str, arguments: list) -> Exception:
    """The program's exception, for the tests: the built-in class of that name (an Exception),
    else a new class that carries the name; with the same arguments where they were plain data."""
    kind = getattr(builtins, str(name), None)
    if not (isinstance(kind, type) and issubclass(kind, Exception)):
        kind = type(str(name), (Exception,), {"__module__": "builtins"})
    arguments = decode(arguments)
    try:
        return kind(*arguments)
    except TypeError:  # a class that wants other arguments (UnicodeDecodeError, say)
        return Exception(f"{name}: {', '.join(map(str, arguments))}")


def _candidate(requests: int, replies: int, pidfd: int | None):
    def candidate(*args, **kwargs):
        try:
            send(requests, encode([list(args), kwargs]))
        except BrokenPipeError:
            raise ProgramEnded from None
        reply = receive(replies, pidfd)
        if reply is None:
            raise ProgramEnded
        try:
            if "raised" in reply:
                failure = _raised(*reply["raised"])
            else:
                return decode(reply["value"])
        except (TypeError, ValueError, KeyError, RecursionError) as exc:
            raise TypeError(f"the program's reply is not plain data ({exc!r})") from None
        raise failure

    return candidate


def tests_namespace(context: bytes | None) -> dict:
    """The tests' namespace, their context (trusted, and no secret: HumanEval's prompt, which the
    program holds too) run in it before the fork, so that what it imports is imported once."""
    namespace = {"__name__": "__check__", "__builtins__": builtins}
    if context is not None:
        exec(compile(context, "prompt", "exec"), namespace)
    return namespace


def _run_tests(
    namespace: dict, check: dict, requests: int, replies: int, pidfd: int | None
) -> None:
    """Run the tests here, the program's function reached through ``candidate``."""
    candidate = _candidate(requests, replies, pidfd)
    exec(compile(check["test"], "test", "exec"), namespace)
    namespace[check["entry_point"]] = candidate  # a test may call it by name, as HumanEval/33
    namespace["check"](candidate)


def _end(pid: int) -> int:
    """Kill the program process (if still there) and reap it: its wait status."""
    with contextlib.suppress(ProcessLookupError):
        _kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def _as_the_program_ended(pid: int) -> int:
    """End as the program process did: its exit code, or the signal that killed it."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        _flush()
        with contextlib.suppress(OSError, ValueError):  # SIGKILL's cannot be set
            signal.signal(sig, signal.SIG_DFL)
        _kill(os.getpid(), sig)
        return 128 + sig
    return os.WEXITSTATUS(status)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: the pipe's end of file alone
        return None


def run(
    source: bytes,
    filename: str,
    namespace: dict,
    check_fd: int | None,
    marker: int,
    layers: list[str],
) -> int:
    """Fork the program process, judge it (the tests run in ``namespace``: ``tests_namespace``);
    the exit status for the child. The caller has confined this process already."""
    entry_point = json.loads(sys.argv[1]).get("entry_point")
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    pid = _fork()
    if pid == 0:  # the program process: nothing of the judge's channels stays open
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd in (null, marker, requests_w, replies_r, *([] if check_fd is None else [check_fd])):
            os.close(fd)
        tested = entry_point if check_fd is not None else None
        _program(source, filename, tested, requests_r, replies_w)
    os.close(requests_r)
    os.close(replies_w)
    pidfd = _pidfd(pid)
    nonce = sys.stdin.buffer.readline().strip().decode()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.write(marker, f"{nonce} S {json.dumps(layers)}\n".encode())
    check = None
    if check_fd is not None:
        with os.fdopen(check_fd, "rb") as fh:
            check = json.loads(fh.read())
    try:
        announced = receive(replies_r, pidfd)
    except ValueError:  # not JSON: only a program writing its own bytes sends that
        announced = "garbage"
    if announced is None:
        return _as_the_program_ended(pid)
    try:
        if announced != RAN:
            raise RuntimeError("the program process sent something else than its first message")
        if check is not None:
            _run_tests(namespace, check, requests_w, replies_r, pidfd)
    except ProgramEnded:
        return _as_the_program_ended(pid)
    except BaseException:  # a test failed (or the tests could not run): not passed
        _end(pid)
        traceback.print_exc()
        return 1
    _end(pid)
    _flush()
    os.write(marker, f"{nonce} P\n".encode())
    return 0
