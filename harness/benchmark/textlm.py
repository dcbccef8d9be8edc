"""Any loaded causal LM as a text model: token ids in, logits, completions and NLL out.

Works with every module ``loaders.load_checkpoint`` returns (transformers models, PEFT models,
``DyLoRAMoEModel``, harness PrefixLMs): it only calls ``forward(input_ids=, attention_mask=)``,
and ``generate`` where the model has one (transformers' KV cache).

Completions are generated in batches (``generate_batch``): prompts left-padded to one width, one
``generate`` call, stop sequences and EOS applied per sequence. Decoding is always the model's
greedy search over ``RowSampler``'s scores: greedy leaves the logits as they are; sampling draws
each row's token from that row's own seeded ``torch.Generator``, so a sample's completion does not
depend on which other prompts share its batch. DyLoRA-MoE is routed on each prompt alone (the
gate's argmax expert of that prompt, as its own ``generate`` does for one), then the prompts of
one expert are generated together with that expert's adapter.
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


class RowSampler:
    """A transformers LogitsProcessor choosing each row's next token: its argmax (greedy), or a
    temperature + top-p draw from the row's own generator; the scores it returns leave only the
    chosen token, so greedy search takes it."""

    def __init__(self, settings: GenerationSettings, seeds: list[int], device: torch.device):
        self.settings = settings
        self.generators = []
        if not settings.greedy:
            for s in seeds:
                g = torch.Generator(device=device)
                g.manual_seed(s)
                self.generators.append(g)

    def choose(self, scores: torch.Tensor) -> torch.Tensor:
        """``[rows]`` next tokens from ``[rows, vocab]`` scores."""
        if self.settings.greedy:
            return scores.argmax(-1)
        probs = torch.softmax(scores.float() / self.settings.temperature, -1)
        sorted_p, order = probs.sort(-1, descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < self.settings.top_p  # always keeps the top token
        sorted_p = sorted_p * keep
        picks = [
            order[r, torch.multinomial(sorted_p[r] / sorted_p[r].sum(), 1, generator=g)]
            for r, g in enumerate(self.generators)
        ]
        return torch.cat(picks)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.settings.greedy:
            return scores
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, self.choose(scores)[:, None], 0.0)


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
        self._moe = hasattr(module, "gate_logits") and hasattr(module, "foundation_model")
        self.calls = {"forward": 0, "generate": 0}
        """Model calls made through this object (tests count them)."""

    def encode(self, text: str, bos: bool = True) -> list[int]:
        """Token ids of ``text``, with the BOS token first when the tokenizer has one."""
        ids = list(self.tokenizer.encode(text, add_special_tokens=False))
        return ([self.bos] if bos and self.bos is not None else []) + ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _forward(self, t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.calls["forward"] += 1
        return _logits(self.module(input_ids=t, attention_mask=mask))

    @torch.no_grad()
    def logits(self, ids: list[int]) -> torch.Tensor:
        """``[len(ids), vocab]`` float32 logits of one sequence."""
        t = torch.tensor([ids], device=self.device)
        return self._forward(t, torch.ones_like(t))[0].float()

    @torch.no_grad()
    def score_batch(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, int, int]]:
        """For each ``(input, target)``: (summed NLL of ``target`` as predicted by the last
        ``len(target)`` positions of ``input``, target tokens, argmax-correct tokens). One
        right-padded forward: a causal model's real positions do not see the padding after
        them."""
        width = max(len(x) for x, _ in pairs)
        ids = torch.full((len(pairs), width), self.pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, (x, _) in enumerate(pairs):
            ids[r, : len(x)] = torch.tensor(x)
            mask[r, : len(x)] = 1
        logits = self._forward(ids.to(self.device), mask.to(self.device))
        out = []
        for r, (x, target) in enumerate(pairs):
            if not target:
                out.append((0.0, 0, 0))
                continue
            row = logits[r, len(x) - len(target) : len(x)].float()
            labels = torch.tensor(target, device=row.device)
            nll = F.cross_entropy(row, labels, reduction="sum")
            out.append((float(nll), len(target), int((row.argmax(-1) == labels).sum())))
        return out

    def generate(self, prompt: list[int], settings: GenerationSettings, seed: int) -> Completion:
        """One completion of ``prompt`` (a batch of one)."""
        return self.generate_batch([prompt], settings, [seed])[0]

    @torch.no_grad()
    def generate_batch(
        self, prompts: list[list[int]], settings: GenerationSettings, seeds: list[int]
    ) -> list[Completion]:
        """A completion of each prompt; sample ``r`` is drawn with ``seeds[r]``'s generator."""
        if not self._hf_generate:
            new = [self._generate_loop(p, settings, s) for p, s in zip(prompts, seeds, strict=True)]
        elif self._moe:
            new = self._generate_moe(prompts, settings, seeds)
        else:
            new = self._generate_hf(self.module, prompts, settings, seeds)
        return [self._completion(ids, settings) for ids in new]

    def _completion(self, new: list[int], settings: GenerationSettings) -> Completion:
        stopped = "max_new_tokens"
        if self.eos in new:
            new, stopped = new[: new.index(self.eos)], "eos"
        text, cut = _cut(self.decode(new), settings.stop)
        return Completion(text, new, "stop sequence" if cut else stopped)

    def _generate_moe(
        self, prompts: list[list[int]], settings: GenerationSettings, seeds: list[int]
    ) -> list[list[int]]:
        """Each prompt routed on its own; the prompts of one expert generated together."""
        from loaders.moe import expert_name

        experts = []
        for p in prompts:
            t = torch.tensor([p], device=self.device)
            self.calls["forward"] += 1
            experts.append(int(self.module.gate_logits(t, torch.ones_like(t))[0].argmax()))
        out: list[list[int]] = [[] for _ in prompts]
        for e in sorted(set(experts)):
            rows = [r for r, x in enumerate(experts) if x == e]
            self.module.foundation_model.set_adapter(expert_name(e))
            group = self._generate_hf(
                self.module.foundation_model,
                [prompts[r] for r in rows],
                settings,
                [seeds[r] for r in rows],
            )
            for r, ids in zip(rows, group, strict=True):
                out[r] = ids
        return out

    def _generate_hf(
        self, model: Any, prompts: list[list[int]], settings: GenerationSettings, seeds: list[int]
    ) -> list[list[int]]:
        """Left-padded prompts through ``model.generate``; each row's new ids up to where it
        stopped (its EOS kept, the pad after it dropped)."""
        from transformers import LogitsProcessorList, StoppingCriteriaList

        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, p in enumerate(prompts):
            ids[r, width - len(p) :] = torch.tensor(p)
            mask[r, width - len(p) :] = 1
        stop = StopOnText(self, width, settings.stop, len(prompts))
        kw: dict[str, Any] = {}  # greedy without stop strings: plain greedy search
        if not settings.greedy:
            kw["logits_processor"] = LogitsProcessorList([RowSampler(settings, seeds, self.device)])
        if settings.stop:  # EOS needs no criterion: a row is cut at its first EOS
            kw["stopping_criteria"] = StoppingCriteriaList([stop])
        self.calls["generate"] += 1
        out = model.generate(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            max_new_tokens=settings.max_new_tokens,
            do_sample=False,
            pad_token_id=self.pad,
            eos_token_id=self.eos,
            **kw,
        )
        return [stop.trim(row[width:].tolist(), r) for r, row in enumerate(out)]

    def _generate_loop(
        self, prompt: list[int], settings: GenerationSettings, seed: int
    ) -> list[int]:
        """Without a cache (models with no ``generate``): one full forward per new token."""
        sampler = RowSampler(settings, [seed], self.device)
        ids, new = list(prompt), []
        for _ in range(settings.max_new_tokens):
            tok = int(sampler.choose(self.logits(ids)[-1:])[0])
            new.append(tok)
            ids.append(tok)
            if tok == self.eos or (settings.stop and _cut(self.decode(new), settings.stop)[1]):
                break
        return new


class StopOnText:
    """transformers StoppingCriteria: a row is done once its new text holds a stop sequence (or
    it produced EOS); records how many new tokens each row had then."""

    def __init__(self, lm: TextLM, start: int, stop: tuple[str, ...], rows: int) -> None:
        self.lm, self.start, self.stop = lm, start, stop
        self.done_at: list[int | None] = [None] * rows

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
        n = input_ids.shape[1] - self.start
        for r, row in enumerate(input_ids):
            if self.done_at[r] is not None:
                continue
            new = row[self.start :].tolist()
            eos = bool(new) and new[-1] == self.lm.eos
            if eos or (self.stop and _cut(self.lm.decode(new), self.stop)[1]):
                self.done_at[r] = n
        done = [d is not None for d in self.done_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def trim(self, new: list[int], row: int) -> list[int]:
        """``new`` as generating this row alone would have returned it."""
        end = self.done_at[row]
        return new if end is None else new[:end]
