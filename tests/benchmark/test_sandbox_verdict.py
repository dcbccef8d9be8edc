"""A program cannot fake its own verdict. Hostile HumanEval completions, each a wrong answer
dressed with a trick that passed when the program and its tests shared one process (the nonce
found in a caller's frame and the pass marker written, an exit before the tests, a patched
builtin, ``check`` replaced in the globals, an object equal to everything), are all scored
failed, and the marker hunt fails on a plain program too. The plain-data calls between the tests
and the program keep the values and exceptions the tests compare."""

from __future__ import annotations

import math
import textwrap

import pytest

from harness.benchmark import sandbox_judge
from harness.benchmark.code_eval import load_problems, program_and_check, score
from harness.benchmark.sandbox import Check, SandboxLimits, run_program

LIMITS = SandboxLimits(timeout_s=10.0)
HUNT = """
import gc, json, os, re, struct, sys
found = set()
frame = sys._getframe()
while frame is not None:  # the sandbox's own frames, up to its main()
    found |= {v for v in frame.f_locals.values() if isinstance(v, str) and re.fullmatch("[0-9a-f]{32}", v)}
    frame = frame.f_back
for obj in gc.get_objects():
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    found |= {v for v in values if isinstance(v, str) and re.fullmatch("[0-9a-f]{32}", v)}
lies = [f"{nonce} P\\n".encode() for nonce in found]
for fd in range(3, 256):  # the marker pipe (its number is in sys.argv) and any other
    for lie in lies:
        try:
            os.write(fd, lie)
        except OSError:
            pass
print("forged with", len(found), "nonce(s)", flush=True)
os._exit(0)
"""
"""Finds the run's nonce where a process holding it keeps it, writes the pass marker to every
descriptor, then leaves before anything else."""
RAN_LIE = HUNT.replace("lies = [", "lies = [struct.pack('>I', 5) + b'\"ran\"'] + [")
"""The same, and the program process's own "ran to its end" too (what a program without tests
may always claim, as it could always just end; with tests, the tests still run)."""
RETURN_WRONG = "    return 0\n"
TRICKS = {
    "forges the pass marker": ("HumanEval/53", RETURN_WRONG + HUNT),
    "forges the pass marker and ran-to-its-end": ("HumanEval/53", RETURN_WRONG + RAN_LIE),
    "os._exit(0) before the tests": ("HumanEval/53", RETURN_WRONG + "import os\nos._exit(0)\n"),
    "sys.exit(0) before the tests": ("HumanEval/53", RETURN_WRONG + "import sys\nsys.exit(0)\n"),
    "os._exit(0) when called": ("HumanEval/53", "    import os\n    os._exit(0)\n"),
    "SystemExit in a finally": (
        "HumanEval/53",
        "    try:\n        return 0\n    finally:\n        raise SystemExit(0)\n",
    ),
    "patches builtins.tuple": (
        "HumanEval/33",
        "    return [0]\nimport builtins\nbuiltins.tuple = lambda *args: ()\n",
    ),
    "patches math.fabs": (
        "HumanEval/32",
        "    return 0.0\nimport math\nmath.fabs = lambda x: 0.0\n",
    ),
    "replaces check in the globals": (
        "HumanEval/53",
        RETURN_WRONG
        + textwrap.dedent("""
            import sys
            def tracer(frame, event, arg):
                if event == "line" and "check" in frame.f_globals:
                    frame.f_globals["check"] = lambda candidate: None
                return tracer
            sys._getframe().f_trace = tracer
            sys.settrace(tracer)
        """),
    ),
    "returns an object equal to everything": (
        "HumanEval/53",
        "    class Equal:\n        __eq__ = lambda self, other: True\n    return Equal()\n",
    ),
    "returns an int whose == is always true": (
        "HumanEval/53",
        "    class Int(int):\n        __eq__ = lambda self, other: True\n    return Int(0)\n",
    ),
}


@pytest.fixture(scope="module")
def humaneval():
    return {p.task_id: p for p in load_problems()}


@pytest.fixture(scope="module")
def scored(humaneval):
    samples = [{"task_id": task, "completion": c} for task, c in TRICKS.values()]
    return dict(zip(TRICKS, score(list(humaneval.values()), samples, LIMITS).results, strict=True))


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_a_completion_cannot_fake_its_verdict(scored, trick):
    result = scored[trick]
    assert result.status == "failed", (trick, result)


def test_the_hunt_finds_nothing_to_forge_and_the_verdict_says_why(scored):
    for forged in ("forges the pass marker", "forges the pass marker and ran-to-its-end"):
        assert scored[forged].detail == "ended before the end of the program (os._exit)"
    assert "AssertionError" in scored["patches math.fabs"].detail
    assert "is not plain data" in scored["returns an object equal to everything"].detail
    assert "SystemExit: 0" in scored["SystemExit in a finally"].detail


def test_a_plain_program_cannot_forge_the_pass_marker():
    result = run_program(HUNT, LIMITS)
    assert result.status == "failed", result
    assert "ended before the end of the program" in result.detail
    assert "forged with 0 nonce(s)" in result.output  # the nonce is nowhere in its process


def test_the_tests_source_never_reaches_the_program(humaneval):
    problem = humaneval["HumanEval/53"]
    spy = (
        "    global SCANNED\n"
        "    if not globals().get('SCANNED'):\n"
        "        import gc, sys\n"
        "        SCANNED, needle = True, 'assert cand' + 'idate(0, 1) == 1'\n"
        "        texts = [v for o in gc.get_objects() if isinstance(o, dict) for v in o.values()]\n"
        "        frame = sys._getframe(1)\n"
        "        while frame is not None:\n"
        "            texts += list(frame.f_locals.values())\n"
        "            frame = frame.f_back\n"
        "        texts = [t.decode(errors='replace') if isinstance(t, bytes) else t for t in texts]\n"
        "        print('LEAKED' if any(needle in t for t in texts if isinstance(t, str)) else 'clean')\n"
        "    return x + y\n"
    )
    source, check = program_and_check(problem, spy)
    result = run_program(source, LIMITS, check=check)
    assert result.status == "passed", result
    assert "clean" in result.output and "LEAKED" not in result.output


def test_a_correct_completion_passes_and_its_exceptions_reach_the_tests():
    check = Check(
        "root",
        "def check(candidate):\n"
        "    assert candidate(9.0) == 3.0 and root(4) == 2\n"
        "    try:\n"
        "        candidate(-1)\n"
        "    except ValueError as exc:\n"
        "        assert str(exc) == 'negative'\n"
        "    else:\n"
        "        raise AssertionError('no ValueError')\n",
    )
    program = (
        "def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x ** 0.5\n"
    )
    assert run_program(program, LIMITS, check=check).status == "passed"
    wrong = program.replace("ValueError", "KeyError")
    result = run_program(wrong, LIMITS, check=check)
    assert result.status == "failed" and result.detail == "KeyError: 'negative'", result


VALUES = [
    None, True, False, 0, -(10**40), 1.5, -0.0, math.inf, "text\u00e9\ud800", b"\x00\xff",
    2 - 3j, [1, [2.0, "3"]], (1, (2,)), {(1, 2): [3], "k": {"n": None}}, {1, 2}, frozenset({3}),
    [], (), {}, set(),
]  # fmt: skip


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_plain_data_crosses_unchanged(value):
    import json

    back = sandbox_judge.decode(json.loads(json.dumps(sandbox_judge.encode(value))))
    assert back == value and type(back) is type(value)
    assert repr(back) == repr(value)  # -0.0 stays -0.0, a tuple stays a tuple


def test_nan_crosses_and_anything_else_is_refused():
    import json

    assert math.isnan(sandbox_judge.decode(json.loads(json.dumps(sandbox_judge.encode(math.nan)))))
    for value in (object(), type("Int", (int,), {})(1), [lambda: 0], range(3)):
        with pytest.raises(TypeError, match="is not plain data"):
            sandbox_judge.encode(value)
    for forged in ({"list": [1]}, {"tuple": 1}, {"dict": [1]}, {"a": 1, "b": 2}):
        with pytest.raises((TypeError, ValueError, KeyError)):
            sandbox_judge.decode(forged)


def test_a_program_that_dies_leaving_a_child_with_its_pipe_is_failed_at_once():
    # without the guard, a forked child keeps the program process's reply pipe open: the judge
    # still sees the program process end (not a wall-clock timeout) and says how it ended
    program = "import os, time\nif os.fork() == 0:\n    time.sleep(60)\nraise ValueError('gone')\n"
    result = run_program(program, SandboxLimits(timeout_s=30.0, guard=False))
    assert result.status == "failed" and result.detail == "ValueError: gone", result
    check = Check("f", "def check(candidate):\n    assert candidate() == 1\n")
    program = "import os, time\ndef f():\n    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\n"
    result = run_program(program, SandboxLimits(timeout_s=30.0, guard=False), check=check)
    assert result.status == "failed", result
    assert result.detail == "ended before the end of the program (os._exit)"


def test_a_context_that_does_not_run_is_an_error_not_a_failure():
    check = Check("f", "def check(candidate):\n    assert candidate() == 1\n", "def f(:\n")
    result = run_program("def f():\n    return 1\n", LIMITS, check=check)
    assert result.status == "error", result
    assert "the tests' context (the problem's prompt) does not run: SyntaxError" in result.detail


def test_a_prompt_that_does_not_run_alone_is_scored_with_the_canonical_solution():
    from harness.benchmark.code_eval import Problem

    problem = Problem("Bare/0", "def f():\n", "    return 1\n", PLAIN_TEST, "f")
    source, check = program_and_check(problem, "    return 2\n")
    assert check.context == "" and problem.canonical_solution in check.test
    assert "return 1" not in source
    assert run_program(source, LIMITS, check=check).status == "failed"
    source, check = program_and_check(problem, "    return 1\n")
    assert run_program(source, LIMITS, check=check).status == "passed"


PLAIN_TEST = "def check(candidate):\n    assert candidate() == 1 and f() == 1\n"
