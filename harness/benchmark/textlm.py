"""Any loaded causal LM as a text model: token ids in, logits, completions and NLL out.

Works with every module ``loaders.load_checkpoint`` returns (transformers models, PEFT models,
``DyLoRAMoEModel``, harness PrefixLMs): it only calls ``forward(input_ids=, attention_mask=)``,
and ``generate`` where the model has one (transformers' KV cache; DyLoRA-MoE's routes to the
argmax expert of the prompt, as the original did). One sequence at a time, so a model that
routes per example (DyLoRA-MoE) is always routed on its own prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.benchmark.generation import GenerationSettings
from harness.models.prefix_lm import PrefixLM


def _logits(out: Any) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out[0]


def _cut(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """``text`` up to its first stop sequence, and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _sample(logits: torch.Tensor, settings: GenerationSettings) -> int:
    """Next token from ``[vocab]`` logits: argmax, or temperature + top-p sampling."""
    if settings.greedy:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / settings.temperature, -1)
    sorted_p, order = probs.sort(descending=True)
    keep = sorted_p.cumsum(0) - sorted_p < settings.top_p  # always keeps the top token
    sorted_p = sorted_p * keep
    return int(order[torch.multinomial(sorted_p / sorted_p.sum(), 1)])


@dataclass
class Completion:
    """Generated text (cut at a stop sequence) and the new token ids."""

    text: str
    ids: list[int]
    stopped: str
    """Why generation ended: ``eos``, ``stop sequence`` or ``max_new_tokens``."""


class TextLM:
    """A module + tokenizer on one device."""

    def __init__(self, module: nn.Module, tokenizer: Any, device: torch.device) -> None:
        self.module, self.tokenizer, self.device = module, tokenizer, device
        self.eos = tokenizer.eos_token_id
        self.bos = tokenizer.bos_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos
        self._hf_generate = hasattr(module, "generate") and not isinstance(module, PrefixLM)

    def encode(self, text: str, bos: bool = True) -> list[int]:
        """Token ids of ``text``, with the BOS token first when the tokenizer has one."""
        ids = list(self.tokenizer.encode(text, add_special_tokens=False))
        return ([self.bos] if bos and self.bos is not None else []) + ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    @torch.no_grad()
    def logits(self, ids: list[int]) -> torch.Tensor:
        """``[len(ids), vocab]`` float32 logits of one sequence."""
        t = torch.tensor([ids], device=self.device)
        out = self.module(input_ids=t, attention_mask=torch.ones_like(t))
        return _logits(out)[0].float()

    @torch.no_grad()
    def continuation(self, prompt: list[int], target: list[int]) -> tuple[float, int, int]:
        """(summed NLL of ``target`` after ``prompt``, target tokens, argmax-correct tokens)."""
        if not target:
            return 0.0, 0, 0
        logits = self.logits(prompt + target)[len(prompt) - 1 : -1]
        labels = torch.tensor(target, device=logits.device)
        nll = F.cross_entropy(logits, labels, reduction="sum")
        return float(nll), len(target), int((logits.argmax(-1) == labels).sum())

    @torch.no_grad()
    def generate(self, prompt: list[int], settings: GenerationSettings, seed: int) -> Completion:
        """A completion of ``prompt``; sampling is seeded with ``seed`` (global RNG restored)."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            new = self._generate_hf(prompt, settings) if self._hf_generate else None
            if new is None:
                new = self._generate_loop(prompt, settings)
        stopped = "max_new_tokens"
        if self.eos in new:
            new, stopped = new[: new.index(self.eos)], "eos"
        text, cut = _cut(self.decode(new), settings.stop)
        return Completion(text, new, "stop sequence" if cut else stopped)

    def _generate_hf(self, prompt: list[int], settings: GenerationSettings) -> list[int]:
        t = torch.tensor([prompt], device=self.device)
        kw: dict[str, Any] = {"do_sample": not settings.greedy}
        if not settings.greedy:
            kw |= {"temperature": settings.temperature, "top_p": settings.top_p, "top_k": 0}
        if settings.stop:
            kw["stopping_criteria"] = _stop_criteria(self, len(prompt), settings.stop)
        out = self.module.generate(
            input_ids=t,
            attention_mask=torch.ones_like(t),
            max_new_tokens=settings.max_new_tokens,
            pad_token_id=self.pad,
            eos_token_id=self.eos,
            **kw,
        )
        return out[0, len(prompt) :].tolist()

    def _generate_loop(self, prompt: list[int], settings: GenerationSettings) -> list[int]:
        """Without a cache (models with no ``generate``): one full forward per new token."""
        ids, new = list(prompt), []
        for _ in range(settings.max_new_tokens):
            tok = _sample(self.logits(ids)[-1], settings)
            new.append(tok)
            ids.append(tok)
            if tok == self.eos or (settings.stop and _cut(self.decode(new), settings.stop)[1]):
                break
        return new


def _stop_criteria(lm: TextLM, start: int, stop: tuple[str, ...]):
    """transformers StoppingCriteria: stop once the new text holds a stop sequence."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
            done = [_cut(lm.decode(row[start:].tolist()), stop)[1] for row in input_ids]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopOnText()])
