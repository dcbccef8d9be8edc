"""Base vs trained on the same samples: paired statistics from ``reports.stats`` (pure functions).

Binary per-sample outcomes (QA exact match; HumanEval with one sample per problem) use McNemar's
exact test and its paired interval (``reports.stats.compare_paired``). Continuous per-sample
scores (perplexity's NLL per token; HumanEval's per-problem pass fraction with k samples) use the
mean paired difference with a normal 95 % interval over samples, and the exact sign test (the
binomial test on the samples where the two models differ; ties dropped), which is McNemar's
formula applied to "trained better" vs "base better" counts.
"""

from __future__ import annotations

from typing import Any

from harness.benchmark.intervals import mean_interval
from harness.benchmark.tasks import task_spec
from reports.stats import ALPHA, compare_paired, mcnemar_exact


def _binary(ids: list[str], base: dict, trained: dict, key: str) -> dict[str, Any]:
    b = [bool(base[i][key]) for i in ids]
    t = [bool(trained[i][key]) for i in ids]
    trained_only = sum(x and not y for x, y in zip(t, b, strict=True))
    base_only = sum(y and not x for x, y in zip(t, b, strict=True))
    cmp = compare_paired(trained_only, base_only, len(ids), sum(t), sum(b))
    return {
        "kind": "binary",
        "test": "McNemar (exact)",
        "diff": cmp.diff,
        "ci95": list(cmp.ci),
        "p_value": cmp.p_value,
        "trained_only": trained_only,
        "base_only": base_only,
    }


def _continuous(
    ids: list[str], base: dict, trained: dict, key: str, lower_is_better: bool
) -> dict[str, Any]:
    diffs = [float(trained[i][key]) - float(base[i][key]) for i in ids]
    mean, ci = mean_interval(diffs)
    sign = -1 if lower_is_better else 1
    better = sum(sign * d > 0 for d in diffs)
    worse = sum(sign * d < 0 for d in diffs)
    return {
        "kind": "continuous",
        "test": "sign test (exact binomial, ties dropped)",
        "diff": mean,
        "ci95": ci,
        "p_value": mcnemar_exact(better, worse),
        "trained_better": better,
        "base_better": worse,
        "ties": len(diffs) - better - worse,
    }


def score_key(task: str, samples_per_task: int = 1) -> str:
    """The per-sample field the comparison tests (the task's, ``tasks.TaskSpec.score_key``)."""
    return task_spec(task).score_key(samples_per_task)


def compare_sides(
    task: str, base: dict[str, dict], trained: dict[str, dict], samples_per_task: int = 1
) -> dict[str, Any]:
    """Paired comparison of per-sample records (``{id: record}``) scored on the same ids."""
    if list(base) != list(trained):
        raise ValueError("base and trained were not scored on the same samples in the same order")
    ids = list(base)
    spec = task_spec(task)
    key, lower = spec.score_key(samples_per_task), spec.lower_is_better
    if key in spec.binary_scores:
        out = _binary(ids, base, trained, key)
    else:
        out = _continuous(ids, base, trained, key, lower)
    out |= {"n": len(ids), "score": key, "lower_is_better": lower}
    out["significant"] = out["p_value"] < ALPHA
    out["verdict"] = verdict(out)
    return out


def verdict(cmp: dict[str, Any]) -> str:
    """``improvement``, ``regression`` or ``no detectable difference`` (at p < 0.05)."""
    if not cmp["significant"] or cmp["diff"] == 0:
        return "no detectable difference"
    better = cmp["diff"] < 0 if cmp["lower_is_better"] else cmp["diff"] > 0
    return "improvement" if better else "regression"


def differing(task: str, base: dict[str, dict], trained: dict[str, dict], key: str) -> list[str]:
    """Ids where the two models' scores differ, largest change first for continuous scores."""
    ids = [i for i in base if base[i][key] != trained[i][key]]
    if key in task_spec(task).binary_scores:
        return ids
    return sorted(ids, key=lambda i: -abs(float(trained[i][key]) - float(base[i][key])))
