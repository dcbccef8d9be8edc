"""``perplexity``: a .txt file's paragraphs or JSONL ``text`` records, scored by
``harness.benchmark.perplexity`` (the first ``--max_length`` tokens of each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.samples import TEXT_KEY, text_samples
from harness.benchmark.tasks.spec import Differences, Rows, TaskSpec, num_ci
from reports import fmt


def _detect(path: Path, keys: set[str]) -> str | None:
    if path.suffix == ".txt":
        return "a .txt file"
    return "records have a 'text' field" if TEXT_KEY in keys else None


def _load(data: Path | None) -> list[Any]:
    if data is None:
        raise BenchmarkInputError("--task perplexity needs --data FILE (.txt or JSONL)")
    return text_samples(data)


def _evaluate(model, samples, cfg, path, tick):
    from harness.benchmark.perplexity import evaluate_perplexity

    return evaluate_perplexity(
        model, samples, cfg.max_length, cfg.window_stride, tick, cfg.batch_size
    )


def _metric_rows(m: dict[str, Any]) -> Rows:
    return [
        ("perplexity", "token perplexity (this tokenizer)", fmt.num(m["perplexity"], 3)),
        ("nll_per_token", "NLL per token (nats)", fmt.num(m["nll_per_token"], 4)),
        *_tokenizer_free(m),
        (
            "mean_nll",
            "mean per-sample NLL/token [95% CI]",
            num_ci(m["mean_sample_nll"], m["mean_sample_nll_ci95"]),
        ),
        ("tokens", "tokens scored", str(m["tokens"])),
    ]


def _tokenizer_free(m: dict[str, Any]) -> Rows:
    """lm-eval's word perplexity, byte perplexity and bits per byte (absent in older results)."""
    if "word_perplexity" not in m:
        return []
    return [
        (
            "word_perplexity",
            "word perplexity (lm-eval: per whitespace word)",
            fmt.num(m["word_perplexity"], 3),
        ),
        (
            "byte_perplexity",
            "byte perplexity (lm-eval: per UTF-8 byte)",
            fmt.num(m["byte_perplexity"], 4),
        ),
        ("bits_per_byte", "bits per byte (lm-eval)", fmt.num(m["bits_per_byte"], 4)),
    ]


def _table_rows(b: dict[str, Any], t: dict[str, Any], delta: str) -> list[tuple[str, ...]]:
    return [
        ("perplexity", fmt.num(b.get("perplexity"), 3), fmt.num(t["perplexity"], 3), ""),
        (
            "mean NLL/token",
            fmt.num(b.get("mean_sample_nll"), 4),
            fmt.num(t["mean_sample_nll"], 4),
            delta,
        ),
    ]


def _differences(rows: list[dict[str, Any]], cmp: dict[str, Any], key: str) -> Differences:
    sentence = (
        f"Trained lower NLL on {cmp['trained_better']} samples, base lower on "
        f"{cmp['base_better']}, equal on {cmp['ties']}; largest changes first."
    )
    table = [
        [
            f"`{s['id']}`",
            fmt.num(s["base"][key], 4),
            fmt.num(s["trained"][key], 4),
            f"{s['trained'][key] - s['base'][key]:+.4f}",
        ]
        for s in rows
    ]
    return sentence, ["sample", "base NLL/token", "trained NLL/token", "Δ"], table


TASK = TaskSpec(
    name="perplexity",
    expects="text",
    unit="samples",
    max_new_tokens=0,
    detect=_detect,
    load=_load,
    evaluate=_evaluate,
    score_key=lambda samples_per_task: "mean_nll",
    metric_rows=_metric_rows,
    table_rows=_table_rows,
    differences=_differences,
    lower_is_better=True,
    score_is_rate=False,
    row_deltas=(("perplexity", 3), ("nll_per_token", 4), ("bits_per_byte", 4)),
    generates=False,
    options=(("max_length", "max_length"), ("stride", "window_stride")),
)
