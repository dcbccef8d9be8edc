"""What a ``benchmark`` task is: one ``TaskSpec``, the same small surface for every task.

A spec holds plain data (name, unit, default max new tokens, stop sequences, the options it
records) and functions: ``detect`` and ``load`` for its data, ``evaluate`` for one model,
``score_key`` for the paired comparison, and the report's rows. The functions import the task's
torch side only when called, so the registry (``harness.benchmark.tasks``) is cheap to import:
the CLI builds its ``--task`` choices from it before torch loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reports import fmt

if TYPE_CHECKING:
    from harness.benchmark.sides import EvalModel, SideResult, Tick

Rows = list[tuple[str, str, str]]
"""``(row key, label, value text)`` of one model's metrics in the report."""
Differences = tuple[str, list[str], list[list[str]]]
"""The report's per-sample differences: the sentence, the table's headers and its rows."""


def pct_ci(value: Any, ci: list[float] | None, k: int | None = None, n: int | None = None) -> str:
    """``12.5% (1/8) [2.2%, 47.1%]``: a rate, its count and its interval (each where known)."""
    count = f" ({k}/{n})" if k is not None and n is not None else ""
    interval = f" [{fmt.pct(ci[0])}, {fmt.pct(ci[1])}]" if ci else ""
    return f"{fmt.pct(value)}{count}{interval}"


def num_ci(value: Any, ci: list[float] | None, digits: int = 4) -> str:
    """``1.2345 [1.1000, 1.3000]``: a number and its interval."""
    interval = f" [{fmt.num(ci[0], digits)}, {fmt.num(ci[1], digits)}]" if ci else ""
    return f"{fmt.num(value, digits)}{interval}"


def no_scoring_path(*models: Any) -> str:
    """Tasks that score every model the same way have no path to choose."""
    return ""


def no_setup_lines(results: dict[str, Any]) -> list[str]:
    """Tasks with nothing to add to the report's setup."""
    return []


@dataclass(frozen=True)
class TaskSpec:
    """One task of ``benchmark``: its data, its evaluation, its comparison and its report rows."""

    name: str
    """The ``--task`` value."""
    expects: str
    """What its data looks like, for the error when no task claims a file."""
    unit: str
    """What one item is called in progress lines and the table (``samples``, ``problems``)."""
    max_new_tokens: int
    """Default ``--max_new_tokens``; 0 for a task that generates nothing."""
    detect: Callable[[Path, set[str]], str | None]
    """``(data path, first record's keys or empty for a non-JSONL file) -> why this task, or
    None``; ``infer_task`` takes the first task that claims the data, in registry order."""
    load: Callable[[Path | None], list[Any]]
    """The samples of ``--data`` (None: the task's default data, or BenchmarkInputError)."""
    evaluate: Callable[[EvalModel, list[Any], Any, str, Tick], SideResult]
    """Score one model on the samples: ``(model, samples, BenchmarkConfig, scoring path, tick)``."""
    score_key: Callable[[int], str]
    """The per-sample field the paired comparison tests, given ``samples_per_task``."""
    metric_rows: Callable[[dict[str, Any]], Rows]
    """The report's rows of one model's metrics."""
    table_rows: Callable[[dict[str, Any], dict[str, Any], str], list[tuple[str, str, str, str]]]
    """The terminal table's rows: ``(base metrics or {}, trained metrics, delta text)``."""
    differences: Callable[[list[dict[str, Any]], dict[str, Any], str], Differences]
    """The report's per-sample differences: ``(differing rows, comparison, score key)``."""
    compared_row: str = ""
    """The metric row that shows the paired comparison (default: the row keyed by the score)."""
    row_deltas: tuple[tuple[str, int | None], ...] = ()
    """Other metric rows whose trained − base difference the report shows: ``(row key,
    decimals)``, None decimals for a rate (percentage points)."""
    default_data: str = ""
    """What ``load(None)`` reads, in words (tasks without default data refuse None)."""
    stop: tuple[str, ...] = ()
    """Stop sequences of its completions (HumanEval's), unless given."""
    binary_scores: tuple[str, ...] = ()
    """Score keys that are pass/fail per sample (McNemar); any other is a number (sign test)."""
    lower_is_better: bool = False
    """A lower per-sample score is better (perplexity's NLL)."""
    score_is_rate: bool = True
    """Differences of the score are shown in percentage points (False: as numbers)."""
    generates: bool = True
    """It generates text, so its generation settings are recorded."""
    options: tuple[tuple[str, str], ...] = ()
    """``(results key, config field)`` of the options it records in the results' ``options``."""
    scoring_path: Callable[..., str] = no_scoring_path
    """``(*models) -> how they are scored``: the one path every model given can take, so that
    base and trained are comparable; empty when there is one way."""
    setup_lines: Callable[[dict[str, Any]], list[str]] = no_setup_lines
    """Lines the task adds to the report's setup (how it scored)."""
