"""Scoring all 164 HumanEval canonical solutions: through ``benchmark score`` (the sandbox) vs the
same programs run one after another without any sandbox.

Run: ``.venv/bin/pytest tests/benchmarks/test_humaneval_bench.py -m slow --benchmark-only -q -s``.

The sides (same 164 programs, ``prompt + canonical_solution + test + check(entry_point)``):

- ``benchmark score``: ``harness.benchmark.score.main`` end to end (read problems and samples,
  run every program in the sandbox in parallel, one worker per available core, write the
  markdown + JSON report); what a user runs, minus the interpreter start-up.
- ``sandbox, 1 worker``: ``code_eval.score`` with one worker: the sandbox's cost per program.
- ``plain python -c, sequential``: ``subprocess.run([python, "-c", program])`` one after
  another, no limits, no isolation; pass = exit status 0.

pass@1 must be 100% on every side (each canonical solution passes its tests); wall time is
reported per side (best of ``ROUNDS``), and ``test_sandbox_vs_plain_side_by_side`` times the
sandbox (one worker per core) and plain ``python -c`` in interleaved rounds of one run and prints
the ratio of their medians.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.benchmark import score as score_cli
from harness.benchmark.code_eval import load_problems, program_for, score
from harness.benchmark.sandbox import SandboxLimits, available_cores

pytestmark = pytest.mark.slow

ROUNDS = 3


@pytest.fixture(scope="module")
def canonical(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, Path]:
    problems = load_problems()
    path = tmp_path_factory.mktemp("humaneval") / "canonical.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for p in problems:
            fh.write(json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n")
    return problems, path


def _report(benchmark, side: str, pass_at_1: float) -> None:
    benchmark.extra_info.update(side=side, programs=164, pass_at_1=pass_at_1)
    benchmark.extra_info["cores"] = available_cores()
    if benchmark.stats is None:
        return
    print(f"\n{side}: pass@1 {100 * pass_at_1:.1f}%, {benchmark.stats.stats.min:.2f} s wall (min)")


def test_benchmark_score_sandboxed(benchmark, canonical, tmp_path):
    _, samples = canonical
    out = tmp_path / "report.md"

    def run() -> int:
        return score_cli.main(["--samples", str(samples), "--output", str(out)])

    assert benchmark.pedantic(run, rounds=ROUNDS, iterations=1) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["statuses"]["passed"] == 164
    _report(
        benchmark, f"benchmark score ({available_cores()} workers)", results["pass_at_k"]["pass@1"]
    )


def test_sandbox_one_worker(benchmark, canonical):
    problems, samples_path = canonical
    samples = [json.loads(line) for line in samples_path.read_text().splitlines()]
    result = benchmark.pedantic(
        lambda: score(problems, samples, SandboxLimits(), workers=1), rounds=ROUNDS, iterations=1
    )
    assert result.statuses["passed"] == 164
    _report(benchmark, "sandbox, 1 worker", result.pass_at_k["pass@1"])


def test_plain_python_sequential(benchmark, canonical, tmp_path):
    problems, _ = canonical
    programs = [program_for(p, p.canonical_solution) for p in problems]

    def run() -> int:
        return sum(
            subprocess.run([sys.executable, "-c", prog], cwd=tmp_path, capture_output=True).returncode == 0
            for prog in programs
        )  # fmt: skip

    passed = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    assert passed == 164
    _report(benchmark, "plain python -c, sequential", passed / 164)


def test_sandbox_vs_plain_side_by_side(benchmark, canonical, tmp_path):
    """The two sides of the README's figure in one run, rounds interleaved (sandboxed with one
    worker per core, then plain ``python -c`` sequentially), so that a load that comes and goes
    on a shared machine falls on both: the ratio of the medians."""
    problems, samples_path = canonical
    samples = [json.loads(line) for line in samples_path.read_text().splitlines()]
    programs = [program_for(p, p.canonical_solution) for p in problems]
    walls: dict[str, list[float]] = {"sandbox": [], "plain": []}

    def one_round() -> None:
        start = time.perf_counter()
        result = score(problems, samples, SandboxLimits())
        walls["sandbox"].append(time.perf_counter() - start)
        assert result.statuses["passed"] == 164
        start = time.perf_counter()
        for prog in programs:
            done = subprocess.run([sys.executable, "-c", prog], cwd=tmp_path, capture_output=True)
            assert done.returncode == 0
        walls["plain"].append(time.perf_counter() - start)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    sandbox, plain = (statistics.median(walls[side]) for side in ("sandbox", "plain"))
    benchmark.extra_info.update(
        sandbox_s=walls["sandbox"], plain_s=walls["plain"], ratio=sandbox / plain
    )
    print(
        f"\nside by side, {ROUNDS} interleaved rounds: sandbox ({available_cores()} workers) "
        f"{sandbox:.2f} s vs plain python -c sequential {plain:.2f} s (medians): "
        f"{sandbox / plain:.2f}x"
    )
