"""``qa``: exact match on the seed's JSONL (question/answer, with or without an image), scored by
``harness.benchmark.qa`` (harness vision models as training-time validation; text LMs by
batched generation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.tasks.spec import Differences, Rows, TaskSpec, pct_ci
from harness.data.jsonl import ANSWER_KEYS, QUESTION_KEYS, read_records
from reports import fmt


def _detect(path: Path, keys: set[str]) -> str | None:
    if keys & set(QUESTION_KEYS) and keys & set(ANSWER_KEYS):
        return "records have a question and an answer (the seed's JSONL)"
    return None


def _load(data: Path | None) -> list[Any]:
    if data is None:
        raise BenchmarkInputError("--task qa needs --data FILE.jsonl (the seed's format)")
    return read_records(data)


def _evaluate(model, samples, cfg, path, tick):
    from harness.benchmark.qa import evaluate_qa

    return evaluate_qa(model, samples, cfg.generation, path, cfg.batch_size, tick)


def _scoring_path(*models: Any) -> str:
    from harness.benchmark.qa import qa_path

    return qa_path(*models)


def _metric_rows(m: dict[str, Any]) -> Rows:
    return [
        (
            "correct",
            "exact match [95% CI]",
            pct_ci(m["exact_match"], m["exact_match_ci95"], m["exact_match_k"], m["n"]),
        ),
        ("cer", "character error rate", fmt.num(m["cer"], 3)),
        ("token_accuracy", "answer token accuracy (teacher-forced)", fmt.pct(m["token_accuracy"])),
        ("loss", "answer loss (nats/token)", fmt.num(m["loss"], 4)),
    ]


def _em(m: dict[str, Any]) -> str:
    if not m:
        return fmt.DASH
    return f"{fmt.pct(m['exact_match'])} ({m['exact_match_k']}/{m['n']})"


def _table_rows(b: dict[str, Any], t: dict[str, Any], delta: str) -> list[tuple[str, ...]]:
    return [
        ("exact match", _em(b), _em(t), delta),
        ("CER", fmt.num(b.get("cer"), 3), fmt.num(t["cer"], 3), ""),
    ]


def _differences(rows: list[dict[str, Any]], cmp: dict[str, Any], key: str) -> Differences:
    sentence = (
        f"{len(rows)} of {cmp['n']} samples differ: {cmp['trained_only']} only the trained "
        f"model gets right, {cmp['base_only']} only the base."
    )
    table = [
        [
            f"`{s['id']}`",
            fmt.cell_text(s["trained"]["answer"], 40),
            fmt.cell_text(s["base"]["prediction"], 40),
            fmt.cell_text(s["trained"]["prediction"], 40),
            "trained" if s["trained"]["correct"] else "base",
        ]
        for s in rows
    ]
    return sentence, ["sample", "answer", "base says", "trained says", "right"], table


def _setup_lines(r: dict[str, Any]) -> list[str]:
    return [f"- Scoring: {r['metrics']['trained']['path']}; exact match after strip"]


TASK = TaskSpec(
    name="qa",
    expects="question/answer",
    unit="samples",
    max_new_tokens=20,  # the seed's validation decoding (<= 20 tokens)
    detect=_detect,
    load=_load,
    evaluate=_evaluate,
    score_key=lambda samples_per_task: "correct",
    binary_scores=("correct",),
    row_deltas=(("cer", 3), ("token_accuracy", None), ("loss", 4)),
    metric_rows=_metric_rows,
    table_rows=_table_rows,
    differences=_differences,
    scoring_path=_scoring_path,
    setup_lines=_setup_lines,
)
