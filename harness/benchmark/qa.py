"""Exact-match QA on the seed's JSONL: harness vision models and plain text LMs.

Harness PrefixLMs (``tiny-vlm``, ``hf-vlm``) are scored by ``harness.cell.evaluate.evaluate``, the same
function training-time validation uses (batched greedy decoding, exact match after strip,
teacher-forced token accuracy, CER). Every other model (transformers, PEFT, DyLoRA-MoE, trainable
rows) is scored through ``TextLM`` (batched generation, ``--batch_size``) with the same prompt layout
(``[BOS] + "\\n\\nQuestion: {q}\\n\\nAnswer:"``) and the same metrics. Base and trained always
take the same path (``qa_path``), so their numbers are comparable.
"""

from __future__ import annotations

import time

import torch

from harness.benchmark.batches import generate_many, score_many
from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.generation import GenerationSettings, first_size
from harness.benchmark.intervals import side_interval
from harness.benchmark.sides import EvalModel, SideResult, Tick, probe_logits
from harness.cell.encoding import EncodedSet
from harness.cell.evaluate import evaluate
from harness.contracts.text_metrics import edit_distance
from harness.data.jsonl import Record
from harness.models.prefix_lm import PROMPT_TEMPLATE, PrefixLM

PREFIX_PATH = "harness.cell.evaluate (batched greedy decoding, as training-time validation)"
TEXT_PATH = "text generation, batched (left-padded, the model's generate)"


def qa_path(*models: EvalModel) -> str:
    """The evaluation path every given model can take (all PrefixLMs, else plain text)."""
    return PREFIX_PATH if all(isinstance(m.module, PrefixLM) for m in models) else TEXT_PATH


def _metrics(records: list[dict], tokens: int, correct_tokens: int, loss_sum: float) -> dict:
    k, n = sum(r["correct"] for r in records), len(records)
    chars = sum(len(r["answer"].strip()) for r in records)
    return {
        "exact_match": k / n,
        "exact_match_k": k,
        "n": n,
        "exact_match_ci95": side_interval(k, n),
        "cer": sum(r["edit_distance"] for r in records) / chars if chars else 0.0,
        "token_accuracy": correct_tokens / tokens if tokens else 0.0,
        "loss": loss_sum / tokens if tokens else float("nan"),
    }


def _prefix_side(
    model: EvalModel, records: list[Record], batch_size: int, max_new: int, tick: Tick
) -> tuple[list[dict], int, int, float]:
    module: PrefixLM = model.module  # type: ignore[assignment]
    rows, tokens, correct, loss_sum = [], 0, 0, 0.0
    for lo in range(0, len(records), batch_size):
        chunk = records[lo : lo + batch_size]
        res = evaluate(module, EncodedSet(chunk, module), model.device, batch_size, max_new)
        n_tok = sum(len(module.answer_ids(r.answer)) for r in chunk)
        tokens += n_tok
        correct += round(res.token_accuracy * n_tok)
        loss_sum += res.loss * n_tok
        rows += [
            {
                "id": p.id,
                "answer": p.answer,
                "prediction": p.prediction,
                "correct": p.correct,
                "edit_distance": p.edit_distance,
            }
            for p in res.predictions
        ]
        tick(len(chunk))
    return rows, tokens, correct, loss_sum


def _text_side(
    model: EvalModel, records: list[Record], settings: GenerationSettings, tick: Tick
) -> tuple[list[dict], int, int, float]:
    lm = model.text()
    for rec in records:
        if rec.image_path is not None:
            raise BenchmarkInputError(
                f"{rec.source or rec.id}: the record has an image but the models are text-only "
                "LMs; vision QA needs a harness vision model (tiny-vlm checkpoint, hf-vlm base)"
            )
    prompts = [lm.encode(PROMPT_TEMPLATE.format(question=r.question)) for r in records]
    targets = [[*lm.encode(r.answer, bos=False), lm.eos] for r in records]
    seeds = [settings.item_seed(i, 0) for i in range(len(records))]
    gen = {k: v for k, v in settings.to_dict().items() if k != "samples_per_task"}
    inputs = [
        {"prompt": p, "target": t, "seed": s, "generation": gen}
        for p, t, s in zip(prompts, targets, seeds, strict=True)
    ]

    def compute(idx: list[int]) -> list[dict]:
        done = generate_many(
            lm,
            [prompts[i] for i in idx],
            [seeds[i] for i in idx],
            settings,
            model.batch_size,
            lambda rows: tick(len(rows)),
        )
        pairs = [((prompts[i] + targets[i])[:-1], targets[i]) for i in idx]
        scored = score_many(lm, pairs, model.batch_size)
        return [
            {"prediction": c.text.strip(), "nll": nll, "tokens": n_tok, "ok": ok}
            for c, (nll, n_tok, ok) in zip(done, scored, strict=True)
        ]

    got = model.results("qa", inputs, compute, tick)
    rows, tokens, correct, loss_sum = [], 0, 0, 0.0
    for rec, g in zip(records, got, strict=True):
        tokens, correct, loss_sum = tokens + g["tokens"], correct + g["ok"], loss_sum + g["nll"]
        answer, pred = rec.answer.strip(), g["prediction"]
        rows.append(
            {
                "id": rec.id,
                "answer": rec.answer,
                "prediction": pred,
                "correct": pred == answer,
                "edit_distance": edit_distance(pred, answer),
            }
        )
    return rows, tokens, correct, loss_sum


@torch.no_grad()
def first_logits(model: EvalModel, record: Record, path: str) -> torch.Tensor:
    """Last-position logits of the first sample's prompt (the data probe)."""
    if path == PREFIX_PATH:
        module: PrefixLM = model.module  # type: ignore[assignment]
        batch = EncodedSet([record], module).batch([0], with_answers=False).to(model.device)
        return module(batch).logits[0, -1].float().cpu()
    lm = model.text()
    return probe_logits(model, lm.encode(PROMPT_TEMPLATE.format(question=record.question)))


def evaluate_qa(
    model: EvalModel,
    records: list[Record],
    settings: GenerationSettings,
    path: str,
    batch_size: int | str,
    tick: Tick,
) -> SideResult:
    """Score every record; ``path`` from ``qa_path`` (the same for base and trained)."""
    start = time.perf_counter()
    if path == PREFIX_PATH:
        if not settings.greedy:
            raise BenchmarkInputError(
                "QA on harness vision models decodes greedily (the harness's evaluation); "
                "drop --temperature"
            )
        rows, tokens, correct, loss_sum = _prefix_side(
            model, records, first_size(batch_size), settings.max_new_tokens, tick
        )
    else:
        rows, tokens, correct, loss_sum = _text_side(model, records, settings, tick)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    logits = first_logits(model, records[0], path)
    probe_s = time.perf_counter() - start
    metrics = {**_metrics(rows, tokens, correct, loss_sum), "path": path}
    return SideResult(model.label, metrics, {r["id"]: r for r in rows}, logits, probe_s, elapsed)
