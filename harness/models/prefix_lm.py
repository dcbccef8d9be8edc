"""A causal-LM decoder with an optional image prefix: the one model shape every cell trains.

Sequence layout (seed 001): ``[BOS] + [image tokens] + "\\n\\nQuestion: {q}\\n\\nAnswer:" +
"{answer}" + [EOS]``. Image positions hold an ``<image>`` placeholder id whose embedding is
replaced by the projected vision features. Text-only models simply have no image tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from harness.cell.attention import build_attention_mask, prefix_ids_from_mask, use_attention
from harness.models.greedy import greedy_decode

PROMPT_TEMPLATE = "\n\nQuestion: {question}\n\nAnswer:"
IGNORE_INDEX = -100


@dataclass
class EncodedBatch:
    """Tensors of one padded micro-batch."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    prefix_ids: torch.Tensor
    """0 on BOS + image positions (the bidirectional block), -1 elsewhere."""
    labels: torch.Tensor | None = None
    pixel_values: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] | None = None
    """Other model inputs by name (hf-vlm: the processor's grids, sizes, masks, token types)."""

    def to(self, device: torch.device | str) -> EncodedBatch:
        def move(t):
            if isinstance(t, dict):
                return {k: v.to(device) for k, v in t.items()}
            return None if t is None else t.to(device)

        return EncodedBatch(*(move(getattr(self, f)) for f in self.__dataclass_fields__))

    @property
    def num_tokens(self) -> int:
        return int(self.attention_mask.sum())


class PrefixLM(nn.Module):
    """``decoder`` (a transformers causal LM, possibly PEFT-wrapped) fed by an optional vision prefix."""

    def __init__(
        self,
        decoder: nn.Module,
        tokenizer,
        vision: nn.Module | None = None,
        projector: nn.Module | None = None,
        image_tokens: int = 0,
    ) -> None:
        super().__init__()
        self.decoder = decoder
        self.vision = vision
        self.projector = projector
        self.tokenizer = tokenizer
        self.image_tokens = image_tokens if vision is not None else 0
        self.image_token_id = (
            tokenizer.convert_tokens_to_ids("<image>") if self.image_tokens else None
        )
        self.attention_mode = "causal"
        self.attention_impl = "sdpa"

    # ------------------------------------------------------------------ attention
    def set_attention(self, mode: str, impl: str) -> None:
        """Select the attention mode and implementation (see harness.cell.attention)."""
        self.attention_mode, self.attention_impl = mode, impl
        use_attention(self.base_decoder(), mode, impl)

    def base_decoder(self) -> nn.Module:
        """The transformers model under any PEFT wrapper."""
        dec = self.decoder
        return dec.get_base_model() if hasattr(dec, "get_base_model") else dec

    def check_attention(self, mode: str, impl: str):
        """Perturbation self-check of the mask (harness.cell.attention.self_check)."""
        from harness.cell.attention import self_check

        return self_check(self.base_decoder(), mode, impl, self.prefix_len())

    def set_prompt_format(self, prompt_format: str) -> None:
        """Only the seed layout (``data.prompt_format: seed``); hf-vlm also has chat_template."""
        if prompt_format != "seed":
            raise ValueError(
                f"data.prompt_format: {prompt_format} needs model.name: hf-vlm (a model with a "
                "chat template); use data.prompt_format: seed"
            )

    def lora_target_modules(self, names: list[str]) -> list[str] | str:
        """PEFT ``target_modules`` for ``train.lora.target_modules`` (name suffixes)."""
        return list(names)

    # ------------------------------------------------------------------ forward
    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None) -> torch.Tensor:
        embeddings = self.base_decoder().get_input_embeddings()
        if self.image_token_id is None or pixel_values is None:
            return embeddings(input_ids)
        is_image = input_ids == self.image_token_id
        embeds = embeddings(input_ids.masked_fill(is_image, 0))
        feats = self.projector(self.vision(pixel_values)).to(embeds.dtype)
        if int(is_image.sum()) != feats.shape[0] * feats.shape[1]:
            raise ValueError(
                f"{int(is_image.sum())} <image> placeholders for {feats.shape[0]} x {feats.shape[1]} "
                "image features: every sample needs exactly model.image_tokens placeholders"
            )
        return embeds.masked_scatter(is_image.unsqueeze(-1), feats)

    def forward(
        self,
        batch: EncodedBatch | None = None,
        past_key_values=None,
        use_cache: bool = False,
        position_ids: torch.Tensor | None = None,
        *,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
    ):
        """Logits for an EncodedBatch, or for ``input_ids`` (+ ``pixel_values``) like a HF model."""
        if batch is None:
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            batch = EncodedBatch(
                input_ids,
                attention_mask,
                prefix_ids_from_mask(attention_mask, self.prefix_len()),
                None,
                pixel_values,
            )
        embeds = self.embed(batch.input_ids, batch.pixel_values)
        if position_ids is None:
            position_ids = (batch.attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        mask = build_attention_mask(
            self.base_decoder(),
            embeds,
            batch.attention_mask,
            batch.prefix_ids,
            self.attention_mode,
            self.attention_impl,
            past_key_values=past_key_values,
        )
        return self.decoder(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=position_ids,
            cache=past_key_values,
            use_cache=use_cache,
        )

    # ------------------------------------------------------------------ encoding
    def prompt_ids(self, question: str) -> list[int]:
        tok = self.tokenizer
        bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        image = [self.image_token_id] * self.image_tokens
        text = tok.encode(PROMPT_TEMPLATE.format(question=question), add_special_tokens=False)
        return bos + image + text

    def answer_ids(self, answer: str) -> list[int]:
        ids = self.tokenizer.encode(answer, add_special_tokens=False)
        return [*ids, self.tokenizer.eos_token_id]

    def preprocess_arrays(self, images: np.ndarray) -> torch.Tensor:
        """Pixels of already decoded uint8 grayscale images ``[N, H, W]``: the same values as
        ``preprocess`` of each image (models may do it faster for a whole batch)."""
        return torch.stack([self.preprocess(Image.fromarray(a)) for a in images])

    def prefix_len(self) -> int:
        return (1 if self.tokenizer.bos_token_id is not None else 0) + self.image_tokens

    def collate(
        self,
        prompts: list[list[int]],
        answers: list[list[int]] | None,
        pixel_values: torch.Tensor | None,
        left_pad: bool = False,
    ) -> EncodedBatch:
        """Pad a micro-batch: right padding for training, left padding for generation."""
        seqs = [p + (answers[i] if answers else []) for i, p in enumerate(prompts)]
        width = max(len(s) for s in seqs)
        pad_id = self.tokenizer.pad_token_id or 0
        n_prefix = self.prefix_len()
        input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(seqs), width), dtype=torch.long)
        prefix = torch.full((len(seqs), width), -1, dtype=torch.long)
        labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long) if answers else None
        for i, seq in enumerate(seqs):
            start = width - len(seq) if left_pad else 0
            input_ids[i, start : start + len(seq)] = torch.tensor(seq)
            attention[i, start : start + len(seq)] = 1
            prefix[i, start : start + n_prefix] = 0
            if labels is not None:
                a0 = start + len(prompts[i])
                labels[i, a0 : a0 + len(answers[i])] = torch.tensor(answers[i])
        return EncodedBatch(input_ids, attention, prefix, labels, pixel_values)

    # ------------------------------------------------------------------ generation
    reuses_prompt_cache = True
    """``score_and_generate`` may decode from the teacher-forced forward's KV cache (a model whose
    ``generate_greedy`` decodes its own way sets this False)."""

    @torch.no_grad()
    def generate_greedy(self, batch: EncodedBatch, max_new_tokens: int) -> list[list[int]]:
        """Greedy decoding with the KV cache; the custom mask is used for the prefill only
        (decode steps see every earlier position, which is right for both attention modes)."""
        out = self(batch, use_cache=True)
        return self._decode(out.logits[:, -1], out.cache, batch.attention_mask, max_new_tokens)

    @torch.no_grad()
    def score_and_generate(self, batch: EncodedBatch, prompt_len: int, max_new_tokens: int):
        """Teacher-forced outputs of ``batch`` (prompts + answers, right-padded; every prompt
        exactly ``prompt_len`` tokens) and the greedy answers, from one forward pass: its cache,
        cut back to the prompt, is the prefill ``generate_greedy`` would compute (no prompt
        position sees an answer token in either attention mode), so prompts are encoded once."""
        out = self(batch, use_cache=True)
        past = out.cache
        past.crop(prompt_len - past.get_seq_length())  # transformers 5: crop(-n) drops n tokens
        first = out.logits[:, prompt_len - 1]
        generated = self._decode(first, past, batch.attention_mask[:, :prompt_len], max_new_tokens)
        return out, generated

    def _decode(
        self, logits, past, attention: torch.Tensor, max_new_tokens: int
    ) -> list[list[int]]:
        """Greedy steps after a prefill whose last logits are ``logits`` (``[B, V]``)."""
        cache = [past]

        def step(tokens, attention, positions):
            embeds = self.base_decoder().get_input_embeddings()(tokens)
            out = self.decoder(
                inputs_embeds=embeds,
                attention_mask=attention,
                position_ids=positions,
                cache=cache[0],
                use_cache=True,
            )
            cache[0] = out.cache
            return out.logits[:, -1]

        positions = attention.long().sum(-1, keepdim=True) - 1
        eos = self.tokenizer.eos_token_id
        return greedy_decode(step, logits, attention, positions, eos, max_new_tokens)


def answer_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Summed cross-entropy over answer tokens, the answer-token count, and correct argmaxes."""
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    mask = shift_labels != IGNORE_INDEX
    loss_sum = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    correct = int(((shift_logits.argmax(-1) == shift_labels) & mask).sum())
    return loss_sum, int(mask.sum()), correct
