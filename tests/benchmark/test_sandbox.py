"""The code sandbox against real untrusted programs: each ends with the right status and nothing
outside its temporary directory changes. Tests marked ``os_layer`` switch the Python guard off
(``SandboxLimits(guard=False)``) to prove that the OS layer alone stops the program; they are
skipped, with the reason, where this machine's kernel or user does not provide that layer."""

from __future__ import annotations

import os
import signal
import socket
import textwrap
from pathlib import Path

import pytest

from harness.benchmark.sandbox import CHILD, ExecResult, SandboxLimits, run_many, run_program

FAST = SandboxLimits(timeout_s=10.0)
"""Programs that end by themselves: the default wall-clock limit."""
SHORT = SandboxLimits(timeout_s=1.5)
"""Programs that would run forever."""


def run(source: str, limits: SandboxLimits = FAST) -> ExecResult:
    return run_program(textwrap.dedent(source), limits)


def _layer(result: ExecResult, words: str) -> bool:
    return any(words in layer for layer in result.isolation)


def _require_layer(words: str) -> None:
    probe = run("pass", SandboxLimits(guard=False))
    if not _layer(probe, words):
        pytest.skip(f"the OS does not give this sandbox the layer {words!r}: {probe.isolation}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's reaping is missing


def test_a_passing_program_passes_with_its_output_and_the_layers_listed():
    result = run("import math\nassert math.gcd(12, 18) == 6\nprint('hello from the sandbox')")
    assert result.status == "passed", result
    assert result.returncode == 0 and result.detail == ""
    assert "hello from the sandbox" in result.output
    assert any("rlimits" in layer for layer in result.isolation)
    assert any("python guard" in layer for layer in result.isolation)


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ("assert 1 + 1 == 3, 'arithmetic'", "AssertionError: arithmetic"),
        ("raise ValueError('bad input')", "ValueError: bad input"),
        ("def f(:\n    pass", "SyntaxError"),
        ("input()", "EOFError"),  # stdin is closed
        ("import sys\nsys.exit(0)", "SystemExit: 0"),  # exiting early is not passing
        ("import os\nos._exit(0)", "ended before the end of the program"),
    ],
)
def test_programs_that_fail_or_end_early_are_failed(source, detail):
    result = run(source)
    assert result.status == "failed", result
    assert detail in result.detail


def test_an_endless_loop_is_a_timeout_and_its_process_group_is_killed():
    result = run("while True:\n    pass", SHORT)
    assert result.status == "timeout", result
    assert result.returncode is None
    assert "wall-clock limit of 1.5 s" in result.detail


@pytest.mark.timeout(120)  # were the group not killed, the sandbox would wait on the child
@pytest.mark.parametrize(
    ("timeout_s", "end", "status"), [(10.0, "", "passed"), (1.5, "time.sleep(120)", "timeout")]
)
def test_nothing_the_program_started_outlives_it(timeout_s, end, status):
    # the guard forbids fork; without it, a child that never ends must die with the program,
    # whether the program ends by itself or is killed at the time limit
    source = f"""
        import os, time
        pid = os.fork()
        if pid == 0:
            while True:
                time.sleep(1)
        print("child", pid, flush=True)
        {end}
    """
    result = run(source, SandboxLimits(timeout_s=timeout_s, guard=False))
    assert result.status == status, result
    pid = int(result.output.split("child", 1)[1].split()[0])
    assert not _alive(pid), f"process {pid} outlived its sandbox"


class _Interrupted(Exception):
    pass


def _live_sandboxes() -> list[int]:
    """Running processes of a sandbox child (its program and what the program forked)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            running = str(CHILD).encode() in (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if running and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.timeout(120)
def test_an_interrupted_caller_leaves_nothing_running():
    """Ctrl-C (here: an exception raised by a timer signal) while a program runs: the program
    and what it started are killed before the exception leaves run_program."""

    def interrupt(signum, frame):
        raise _Interrupted

    source = "import os, time\nif os.fork() == 0:\n    time.sleep(300)\nwhile True:\n    pass"
    before = set(_live_sandboxes())
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(_Interrupted):
            run(source, SandboxLimits(timeout_s=60.0, guard=False))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert set(_live_sandboxes()) - before == set()


def test_a_fork_bomb_fails_and_leaves_no_process():
    result = run("import os\nwhile True:\n    os.fork()")
    assert result.status == "failed", result
    assert "os.fork is disabled" in result.detail
    result = run("import subprocess\nsubprocess.run(['sh', '-c', ':(){ :|:& };:'])")
    assert result.status == "failed" and "disabled" in result.detail, result
    result = run("import multiprocessing\nmultiprocessing.Process(target=print).start()")
    assert result.status == "failed" and "disabled" in result.detail, result


def test_os_layer_a_fork_bomb_is_stopped_by_the_process_limit():
    _require_layer("process limit")
    source = "import os\nwhile True:\n    os.fork()"
    result = run(source, SandboxLimits(timeout_s=20.0, guard=False))
    assert result.status == "failed", result
    assert "Resource temporarily unavailable" in result.output


def test_allocating_100_gb_fails_with_a_memory_error():
    result = run("block = bytearray(100 * 10**9)")
    assert result.status == "failed", result
    assert result.detail == "MemoryError"
    # allocating without end (a small limit, so that the test touches little memory)
    endless = "blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))"
    result = run(endless, SandboxLimits(memory_bytes=256 * 2**20))
    assert result.status == "failed" and result.detail == "MemoryError", result


GUARDED_WRITES = (
    'open(target, "w").write("overwritten")',
    'open(target + ".new", "w").write("created")',
    "os.remove(target)",
    "os.rename(target, target + '.moved')",
    "shutil.rmtree(os.path.dirname(target))",
    'os.mkdir(target + ".dir")',
)
RAW_WRITES = ('_io.FileIO(target, "w").write(b"overwritten")', "os.truncate(target, 0)")
"""Writes that go around the Python guard: only the OS layers stop them."""


def _writes_outside(sentinel: Path, attempts: tuple[str, ...], guard: bool) -> ExecResult:
    lines = "\n".join(f"    lambda: {a}," for a in attempts)
    source = f"""import os, shutil, _io
target = {str(sentinel)!r}
attempts = [
{lines}
]
refused = 0
for attempt in attempts:
    try:
        attempt()
    except OSError:
        refused += 1
assert refused == len(attempts), f"only {{refused}} of {{len(attempts)}} writes were refused"
raise SystemExit("every write outside was refused")
"""
    return run(source, SandboxLimits(guard=guard))


def _unchanged(tmp_path: Path, sentinel: Path) -> None:
    assert sentinel.read_text() == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sentinel.txt"]


def test_writing_or_deleting_outside_its_directory_changes_nothing(tmp_path):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("original")
    os.chmod(tmp_path, 0o777)  # even a world-writable directory is out of reach
    result = _writes_outside(sentinel, GUARDED_WRITES, guard=True)
    assert result.status == "failed", result
    assert "every write outside was refused" in result.detail, result.output
    _unchanged(tmp_path, sentinel)


def test_os_layer_writes_outside_are_refused_without_the_guard(tmp_path):
    _require_layer("filesystem (mount namespace")
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("original")
    os.chmod(tmp_path, 0o777)
    os.chmod(sentinel, 0o666)
    result = _writes_outside(sentinel, GUARDED_WRITES + RAW_WRITES, guard=False)
    assert "every write outside was refused" in result.detail, result.output
    _unchanged(tmp_path, sentinel)


def test_writing_inside_its_directory_works_and_the_directory_is_removed():
    source = """
        import os
        with open("scratch.txt", "w") as fh:
            fh.write("mine")
        assert open("scratch.txt").read() == "mine"
        print("cwd", os.getcwd())
    """
    result = run(source, SandboxLimits(guard=False))  # the guard disables os.getcwd
    assert result.status == "passed", result
    workdir = Path(result.output.split("cwd", 1)[1].split()[0])
    assert workdir.name.startswith("sandbox-") and not workdir.exists()
    assert run(source.replace('print("cwd", os.getcwd())', "")).status == "passed"


@pytest.fixture
def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def _connect(port: int, guard: bool) -> ExecResult:
    source = f"""
        import socket
        s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
        s.sendall(b"exfiltrated")
    """
    return run(source, SandboxLimits(guard=guard))


def _accept_soon(server: socket.socket):
    import select

    select.select([server], [], [], 2)
    return server.accept()


def _nothing_arrived(server: socket.socket) -> None:
    with pytest.raises(BlockingIOError):  # no connection is waiting to be accepted
        server.accept()


def test_opening_a_network_socket_fails_and_reaches_nothing(listener):
    # the listener is real: the same connection from this process succeeds
    port = listener.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        conn, _ = _accept_soon(listener)
        conn.close()
    result = _connect(port, guard=True)
    assert result.status == "failed", result
    _nothing_arrived(listener)


def test_os_layer_no_network_without_the_guard(listener):
    _require_layer("network namespace")
    result = _connect(listener.getsockname()[1], guard=False)
    assert result.status == "failed", result
    assert "Network is unreachable" in result.detail
    _nothing_arrived(listener)


def test_the_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-that-must-not-leak")
    source = """
        import os
        assert "WANDB_API_KEY" not in os.environ, "leaked"
        assert sorted(os.environ) == sorted({keys!r}), sorted(os.environ)
    """
    keys = ["PATH", "LANG", "LC_ALL", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"]
    keys += ["MKL_NUM_THREADS", "HOME", "TMPDIR"]
    result = run(source.replace("{keys!r}", repr(keys)))
    assert result.status == "passed", result


def test_output_is_captured_truncated_and_bounded():
    result = run("print('x' * 100_000)\nprint('the end')", SandboxLimits(output_chars=200))
    assert result.status == "passed"
    assert len(result.output) == 200 and result.output.rstrip().endswith("the end")
    flood = run("while True:\n    print('y' * 10_000)", SandboxLimits(file_size_bytes=2**20))
    assert flood.status == "failed" and "file size limit" in flood.detail, flood


def test_a_sandbox_that_cannot_be_set_up_is_an_error_not_a_failure():
    # an address-space limit far below what the interpreter already uses: setup cannot finish
    result = run("pass", SandboxLimits(memory_bytes=2**20))
    assert result.status == "error", result
    assert result.isolation == ()


def test_installed_numerical_libraries_import_inside_the_sandbox():
    # site-packages is on sys.path without `site`; the guard leaves what numpy/scipy need
    result = run("import numpy\nassert int(numpy.arange(4).sum()) == 6")
    assert result.status == "passed", result
    pytest.importorskip("scipy")
    assert run("import scipy.special\nassert scipy.special.comb(5, 2) == 10").status == "passed"


def test_run_many_keeps_the_order_and_runs_in_parallel():
    sources = ["assert True", "assert False", "raise KeyError('k')", "pass"] * 3
    results = run_many(sources, SHORT, workers=2)
    assert [r.status for r in results] == ["passed", "failed", "failed", "passed"] * 3
    assert "KeyError" in results[2].detail
    with pytest.raises(ValueError, match="workers"):
        run_many(sources, SHORT, workers=0)


@pytest.mark.parametrize("field", ["timeout_s", "memory_bytes", "file_size_bytes", "cpu_s"])
def test_limits_must_be_positive(field):
    with pytest.raises(ValueError, match=field):
        SandboxLimits(**{field: 0})
