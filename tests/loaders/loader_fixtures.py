"""Helpers for the loader tests: tiny transformers models built from configs, nothing downloaded."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

VOCAB = 64
HIDDEN = 16
IDS = torch.tensor([[1, 5, 9, 13, 2, 40, 63, 7]])


def tiny_config(**overrides) -> LlamaConfig:
    """A 1-layer Llama small enough to build in milliseconds."""
    kw = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
        tie_word_embeddings=False,
        pad_token_id=0,
    )
    kw.update(overrides)
    return LlamaConfig(**kw)


def tiny_model(seed: int = 0, **overrides) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(tiny_config(**overrides)).eval()


@torch.no_grad()
def logits_of(model: torch.nn.Module, ids: torch.Tensor = IDS) -> torch.Tensor:
    model.eval()
    return model(input_ids=ids).logits.float()
