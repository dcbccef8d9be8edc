"""Models from transformers checkpoints: any causal LM (text tasks) from a local path or hub id.

Nothing here downloads in tests or defaults: a hub id only resolves on a machine with network,
and remote code runs only when ``model.trust_remote_code: true`` is set explicitly.
"""

from __future__ import annotations

import torch

from harness.contracts.config import ModelConfig
from harness.models.prefix_lm import PrefixLM


class ModelLoadError(RuntimeError):
    """The model named in the config could not be loaded; the message says what to do."""


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def build_hf_causal_lm(cfg: ModelConfig) -> PrefixLM:
    """``AutoModelForCausalLM`` + ``AutoTokenizer`` from ``model.path``, wrapped as a text-only PrefixLM."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.path, trust_remote_code=cfg.trust_remote_code)
        decoder = AutoModelForCausalLM.from_pretrained(
            cfg.path, trust_remote_code=cfg.trust_remote_code, dtype=_dtype(cfg.dtype)
        )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"model.path {cfg.path!r}: could not load a causal LM and its tokenizer ({first}). "
            "Give a local directory with config.json, weights and tokenizer files, or a hub id on a "
            "machine with network access; set model.trust_remote_code: true only for code you trust."
        ) from None
    if tokenizer.eos_token_id is None:
        raise ModelLoadError(f"model.path {cfg.path!r}: the tokenizer has no EOS token; add one")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return PrefixLM(decoder, tokenizer)
