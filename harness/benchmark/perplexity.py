"""Perplexity on a text or JSONL file: every token after the first, at most ``max_length`` each.

Per sample: the text is tokenized with the model's tokenizer (BOS first where it has one), cut to
its first ``max_length + 1`` tokens, and every token after the first is scored (so the first real
token is scored too when there is a BOS). Corpus perplexity is ``exp(total NLL / total tokens)``;
the per-sample score compared between models is the sample's mean NLL per token.
"""

from __future__ import annotations

import math
import time

from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.intervals import mean_interval
from harness.benchmark.samples import TextSample
from harness.benchmark.sides import EvalModel, SideResult, Tick


def evaluate_perplexity(
    model: EvalModel, samples: list[TextSample], max_length: int, tick: Tick
) -> SideResult:
    """Score every sample; raises BenchmarkInputError for a sample with nothing to score."""
    lm = model.text()
    start = time.perf_counter()
    rows = []
    for s in samples:
        full = lm.encode(s.text)
        ids = full[: max_length + 1]
        if len(ids) < 2:
            raise BenchmarkInputError(
                f"sample {s.id}: too short to score (needs at least one token after the first)"
            )
        nll, n, _ = lm.continuation(ids[:1], ids[1:])
        rows.append(
            {
                "id": s.id,
                "nll": nll,
                "tokens": n,
                "mean_nll": nll / n,
                "truncated": len(full) > len(ids),
            }
        )
        tick(1)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    first = lm.logits(lm.encode(samples[0].text)[:max_length])[-1].cpu()
    probe_s = time.perf_counter() - start
    total_nll, total_tokens = sum(r["nll"] for r in rows), sum(r["tokens"] for r in rows)
    mean, ci = mean_interval([r["mean_nll"] for r in rows])
    metrics = {
        "perplexity": math.exp(total_nll / total_tokens),
        "nll_per_token": total_nll / total_tokens,
        "tokens": total_tokens,
        "n": len(rows),
        "mean_sample_nll": mean,
        "mean_sample_nll_ci95": ci,
        "truncated_samples": sum(r["truncated"] for r in rows),
        "max_length": max_length,
    }
    return SideResult(model.label, metrics, {r["id"]: r for r in rows}, first, probe_s, elapsed)
