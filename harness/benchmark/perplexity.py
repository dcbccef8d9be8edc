"""Perplexity on a text or JSONL file: every token of each sample, in sliding windows.

Per sample the text is tokenized with the model's tokenizer (no special tokens) and cut into
windows exactly as lm-evaluation-harness's ``loglikelihood_rolling`` does
(``lm_eval.utils.get_rolling_token_windows`` with ``max_seq_len = --max_length`` and
``context_len = max_length - stride + 1``): the first window is the prefix token (BOS, else EOS,
lm-eval's ``prefix_token_id``) and the first ``max_length - 1`` tokens, predicting the first
``max_length``; each later window predicts the next ``stride`` tokens given the ``max_length``
tokens before them. So every token is scored once, with at least ``max_length - stride`` tokens
of context after the first window (``--stride`` = ``--max_length``, the default, is lm-eval's
disjoint windows).

Reported, each labelled: token perplexity ``exp(NLL / tokens)`` (this tokenizer's tokens; not
comparable across tokenizers), and lm-eval's tokenizer-free ones over the corpus: word perplexity
``exp(NLL / words)`` (words: ``len(re.split(r"\\s+", text))``), byte perplexity
``exp(NLL / UTF-8 bytes)`` and bits per byte ``NLL / bytes / ln 2``.
"""

from __future__ import annotations

import math
import re
import time

from harness.benchmark.batches import score_many
from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.intervals import mean_interval
from harness.benchmark.samples import TextSample
from harness.benchmark.sides import EvalModel, SideResult, Tick, probe_logits


def rolling_windows(
    tokens: list[int], prefix: int, max_length: int, stride: int
) -> list[tuple[list[int], list[int]]]:
    """``(model input, tokens predicted by its last positions)`` of each window; together they
    predict every token once (lm-eval's rolling windows, made disjoint)."""
    context_len = max_length - stride + 1
    pred_len = max_length - context_len + 1
    out: list[tuple[list[int], list[int]]] = []
    if not tokens:
        return out
    first = min(max_length, len(tokens))
    out.append(([prefix, *tokens[: first - 1]], tokens[:first]))
    predicted = first
    while predicted < len(tokens):
        n = min(len(tokens) - predicted, pred_len)
        end = predicted + n
        out.append((tokens[max(end - max_length - 1, 0) : end - 1], tokens[end - n : end]))
        predicted += n
    return out


def count_words(text: str) -> int:
    """Words as lm-eval counts them (``re.split(r"\\s+", text)``, empty edges included)."""
    return len(re.split(r"\s+", text))


def evaluate_perplexity(
    model: EvalModel,
    samples: list[TextSample],
    max_length: int,
    stride: int,
    tick: Tick,
    batch_size: int | str = 1,
) -> SideResult:
    """Score every sample; raises BenchmarkInputError for a sample with nothing to score."""
    lm = model.text()
    start = time.perf_counter()
    ids = [lm.encode(s.text, bos=False) for s in samples]
    for s, t in zip(samples, ids, strict=True):
        if not t:
            raise BenchmarkInputError(f"sample {s.id}: no tokens to score")
    inputs = [{"ids": t, "max_length": max_length, "stride": stride} for t in ids]

    def compute(idx: list[int]) -> list[dict]:
        prefix = lm.bos if lm.bos is not None else lm.eos
        windows = [(i, w) for i in idx for w in rolling_windows(ids[i], prefix, max_length, stride)]
        left = {i: 0 for i in idx}
        for i, _ in windows:
            left[i] += 1

        def finished(rows: list[int]) -> None:  # a sample is done once all its windows are
            for r in rows:
                left[windows[r][0]] -= 1
                tick(int(left[windows[r][0]] == 0))

        scored = score_many(lm, [w for _, w in windows], batch_size, finished)
        nll = {i: 0.0 for i in idx}
        for (i, _), (s, _, _) in zip(windows, scored, strict=True):
            nll[i] += s
        counts = {i: sum(1 for j, _ in windows if j == i) for i in idx}
        return [{"nll": nll[i], "windows": counts[i]} for i in idx]

    got = model.results("rolling", inputs, compute, tick)
    rows = [
        {
            "id": s.id,
            "nll": g["nll"],
            "tokens": len(t),
            "mean_nll": g["nll"] / len(t),
            "windows": g["windows"],
            "words": count_words(s.text),
            "bytes": len(s.text.encode("utf-8")),
        }
        for s, t, g in zip(samples, ids, got, strict=True)
    ]
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    first = probe_logits(model, lm.encode(samples[0].text)[:max_length])
    probe_s = time.perf_counter() - start
    total_nll, total_tokens = sum(r["nll"] for r in rows), sum(r["tokens"] for r in rows)
    words, n_bytes = sum(r["words"] for r in rows), sum(r["bytes"] for r in rows)
    mean, ci = mean_interval([r["mean_nll"] for r in rows])
    metrics = {
        "perplexity": math.exp(total_nll / total_tokens),
        "nll_per_token": total_nll / total_tokens,
        "word_perplexity": math.exp(total_nll / words),
        "byte_perplexity": math.exp(total_nll / n_bytes),
        "bits_per_byte": total_nll / n_bytes / math.log(2),
        "nll": total_nll,
        "tokens": total_tokens,
        "words": words,
        "bytes": n_bytes,
        "n": len(rows),
        "mean_sample_nll": mean,
        "mean_sample_nll_ci95": ci,
        "windows": sum(r["windows"] for r in rows),
        "max_length": max_length,
        "stride": stride,
    }
    return SideResult(model.label, metrics, {r["id"]: r for r in rows}, first, probe_s, elapsed)
