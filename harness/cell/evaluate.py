"""Evaluation shared by training-time validation and (later) the benchmark command.

Exact match = greedy prediction == answer after strip. Token accuracy = teacher-forced argmax
accuracy on answer tokens. CER = total edit distance / total answer characters.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from harness.cell.encoding import EncodedSet
from harness.contracts.schema import EvalRecord, Prediction
from harness.contracts.text_metrics import edit_distance
from harness.models.prefix_lm import answer_loss


@dataclass
class EvalResult:
    exact_match_k: int
    n: int
    token_accuracy: float
    cer: float
    loss: float
    elapsed_s: float
    predictions: list[Prediction] = field(default_factory=list)

    @property
    def exact_match(self) -> float:
        return self.exact_match_k / self.n if self.n else 0.0

    def metric(self, name: str) -> float:
        """Selection metric, oriented so that higher is better."""
        oriented = {
            "exact_match": self.exact_match,
            "token_accuracy": self.token_accuracy,
            "cer": -self.cer,
        }
        return oriented[name]

    def record(self, split: str, step: int, elapsed_s: float) -> EvalRecord:
        """This result as a metrics.jsonl line."""
        return EvalRecord(
            step=step,
            split=split,
            exact_match_k=self.exact_match_k,
            n=self.n,
            exact_match=self.exact_match,
            token_accuracy=self.token_accuracy,
            cer=self.cer,
            elapsed_s=elapsed_s,
        )


@torch.no_grad()
def evaluate(
    model,
    data: EncodedSet,
    device: torch.device,
    batch_size: int,
    max_new_tokens: int,
    autocast=None,
) -> EvalResult:
    """Score every sample of ``data``: teacher-forced loss/token accuracy, then greedy decoding."""
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    loss_sum, tokens, correct = 0.0, 0, 0
    preds: list[Prediction] = []
    tok = model.tokenizer
    for lo in range(0, len(data), batch_size):
        idx = list(range(lo, min(lo + batch_size, len(data))))
        batch = data.batch(idx).to(device)
        prompt_lens = {len(data.prompts[i]) for i in idx}
        with autocast() if autocast else nullcontext():
            if len(prompt_lens) == 1 and model.reuses_prompt_cache:  # one pass (same prompts)
                out, generated = model.score_and_generate(batch, prompt_lens.pop(), max_new_tokens)
            else:
                out = model(batch)
                generated = model.generate_greedy(
                    data.batch(idx, with_answers=False, left_pad=True).to(device), max_new_tokens
                )
            s, t, c = answer_loss(out.logits, batch.labels)
        loss_sum, tokens, correct = loss_sum + float(s), tokens + t, correct + c
        for i, ids in zip(idx, generated, strict=True):
            rec = data.records[i]
            pred = tok.decode(ids, skip_special_tokens=True).strip()
            dist = edit_distance(pred, rec.answer.strip())
            preds.append(Prediction(rec.id, rec.answer, pred, pred == rec.answer.strip(), dist))
    model.train(was_training)
    chars = sum(len(p.answer.strip()) for p in preds)
    return EvalResult(
        exact_match_k=sum(p.correct for p in preds),
        n=len(preds),
        token_accuracy=correct / tokens if tokens else 0.0,
        cer=sum(p.edit_distance for p in preds) / chars if chars else 0.0,
        loss=loss_sum / tokens if tokens else float("nan"),
        elapsed_s=time.perf_counter() - start,
        predictions=preds,
    )
