"""Greedy decoding after a prefill, shared by every model: one token per row and step, rows that
emitted EOS keep emitting it, the loop ends when every row is done or after ``max_new_tokens``."""

from __future__ import annotations

from collections.abc import Callable

import torch

Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``step(next_tokens [B, 1], attention_mask [B, S + 1], position_ids) -> logits [B, V]`` of the
new position (the model's cache advanced by one token)."""


def greedy_decode(
    step: Step,
    logits: torch.Tensor,
    attention: torch.Tensor,
    positions: torch.Tensor,
    eos: int,
    max_new_tokens: int,
) -> list[list[int]]:
    """The greedy answers (without EOS) after a prefill whose last logits are ``logits``
    (``[B, V]``); ``positions`` are the prefill's last position ids (the next step adds one)."""
    done = torch.zeros(attention.shape[0], dtype=torch.bool, device=attention.device)
    generated: list[torch.Tensor] = []
    next_tok = logits.argmax(-1)
    for _ in range(max_new_tokens):
        next_tok = torch.where(done, torch.full_like(next_tok, eos), next_tok)
        generated.append(next_tok)
        done |= next_tok == eos
        if bool(done.all()):
            break
        attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
        positions = positions + 1
        next_tok = step(next_tok[:, None], attention, positions).argmax(-1)
    if not generated:
        return [[] for _ in range(attention.shape[0])]
    new = torch.stack(generated, dim=1).tolist()
    return [row[: row.index(eos)] if eos in row else row for row in new]
