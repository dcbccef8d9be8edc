"""Reading ``--data`` (lines, JSONL records, text paragraphs) and the subset both models are
scored on; which task a file is for is ``harness.benchmark.tasks.infer_task``."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harness.benchmark.errors import BenchmarkInputError

TEXT_KEY = "text"
T = TypeVar("T")


@dataclass(frozen=True)
class TextSample:
    """One perplexity sample: a paragraph of a .txt file or the ``text`` of a JSONL record."""

    id: str
    text: str


def read_lines(path: Path) -> list[str]:
    """The lines of a text file (plain or .gz), BenchmarkInputError naming it when unreadable."""
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


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of every non-empty JSONL line."""
    out = []
    for i, line in enumerate(read_lines(path), start=1):
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


def text_samples(path: Path) -> list[TextSample]:
    """Paragraphs (blank-line separated) of a .txt file, or the ``text`` of each JSONL record."""
    if path.suffix == ".txt":
        paragraphs, current = [], []
        for line in [*read_lines(path), ""]:
            if line.strip():
                current.append(line)
            elif current:
                paragraphs.append("\n".join(current))
                current = []
        if not paragraphs:
            raise BenchmarkInputError(f"--data {path}: no text (empty file)")
        return [TextSample(f"{path.stem}:{i}", p) for i, p in enumerate(paragraphs, start=1)]
    out = []
    for lineno, obj in read_jsonl(path):
        text = obj.get(TEXT_KEY)
        if not isinstance(text, str) or not text.strip():
            raise BenchmarkInputError(f"{path}:{lineno}: field 'text' must be a non-empty string")
        out.append(TextSample(str(obj.get("id", f"{path.stem}:{lineno}")), text))
    return out


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
