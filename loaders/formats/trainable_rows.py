"""``trainable-rows`` (seed 003): only the new vocabulary rows of the embedding and LM head.

Files: ``trainable_rows.pt`` (loaded with ``weights_only=True``), ``trainable_rows.json``, and
``token_space.json`` (+ ``token_space.sha256``) in the checkpoint directory or its parent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from loaders.base import load_base
from loaders.context import LoadContext
from loaders.errors import CorruptCheckpointError, TokenSpaceError, VocabSizeError
from loaders.io import load_pickle, read_json
from loaders.token_space import TOKEN_SPACE, pad_id, resolve_token_space

NAME = "trainable-rows"
ROWS_PT = "trainable_rows.pt"
ROWS_JSON = "trainable_rows.json"


def _dir(path: Path) -> Path:
    return path.parent if path.is_file() else path


def detect(path: Path) -> str | None:
    """A directory (or the file itself) with ``trainable_rows.pt``."""
    if (_dir(path) / ROWS_PT).is_file() and (path.is_dir() or path.name == ROWS_PT):
        return f"{ROWS_PT} present"
    return None


def describe(path: Path) -> dict[str, Any]:
    """Row range and token-space facts (validated, hash-checked); no model."""
    d = _dir(path)
    recorded = read_json(d / ROWS_JSON) if (d / ROWS_JSON).is_file() else {}
    info: dict[str, Any] = {**recorded, "format": NAME}
    found = resolve_token_space(d)
    if found is not None:
        _, space, facts = found
        info.update(
            facts,
            text_vocab_size=space["text_vocab_size"],
            vocab_size_total=space["vocab_size_total"],
        )
    return info


def _rows(d: Path) -> dict[str, Any]:
    rows = load_pickle(d / ROWS_PT)
    if not isinstance(rows, dict) or not isinstance(rows.get("embeddings"), torch.Tensor):
        raise CorruptCheckpointError(
            d / ROWS_PT,
            "expected a dict with an 'embeddings' tensor",
            "re-save it with the trainer",
        )
    for k in ("row_start", "row_end"):
        if not isinstance(rows.get(k), int):
            raise CorruptCheckpointError(
                d / ROWS_PT, f"'{k}' must be an int", "re-save it with the trainer"
            )
    return rows


def _check(rows: dict[str, Any], space: dict[str, Any] | None, d: Path, hidden: int) -> None:
    start, end = rows["row_start"], rows["row_end"]
    if space is not None and (start, end) != (
        int(space["text_vocab_size"]),
        int(space["vocab_size_total"]),
    ):
        raise TokenSpaceError(
            d / ROWS_PT,
            f"saved rows {start}..{end} do not match the token space's "
            f"{space['text_vocab_size']}..{space['vocab_size_total']}",
            "use the token_space.json this checkpoint was trained with",
        )
    for name in ("embeddings", "lm_head"):
        t = rows.get(name)
        if t is not None and tuple(t.shape) != (end - start, hidden):
            raise VocabSizeError(
                d / ROWS_PT,
                f"'{name}' has shape {list(t.shape)}, expected [{end - start}, {hidden}] "
                f"(rows {start}..{end}, model hidden size {hidden})",
                "check the base model and the checkpoint",
            )


@torch.no_grad()
def load(path: Path, ctx: LoadContext) -> nn.Module:
    """Resize embeddings/LM head to the token space, patch the saved rows, set the pad id."""
    d = _dir(path)
    rows = _rows(d)
    meta = read_json(d / ROWS_JSON) if (d / ROWS_JSON).is_file() else {}
    found = resolve_token_space(d)
    ts_path, space = (found[0], found[1]) if found else (None, None)
    if space is not None:
        ctx.hp(**describe(d))
    else:
        ctx.warn(f"no {TOKEN_SPACE} next to the checkpoint: the row range is not validated")
    ctx.report.files = [p.name for p in (d / ROWS_PT, d / ROWS_JSON) if p.is_file()] + (
        [str(ts_path)] if ts_path else []
    )
    model = load_base(None, ctx, d / ROWS_PT, recorded=rows.get("base_llm") or meta.get("base_llm"))
    start, end = rows["row_start"], rows["row_end"]
    _check(rows, space, d, model.get_input_embeddings().weight.shape[1])
    model.resize_token_embeddings(start)
    model.resize_token_embeddings(end)
    ctx.probe_before(model, low=max(0, start - 4))
    emb = model.get_input_embeddings().weight
    emb[start:end] = rows["embeddings"].to(device=emb.device, dtype=emb.dtype)
    kr = ctx.report.key_report("rows")
    kr.matched.append(f"embeddings[{start}:{end}]")
    head = model.get_output_embeddings()
    if rows.get("lm_head") is not None and head is not None and head.weight is not emb:
        head.weight[start:end] = rows["lm_head"].to(
            device=head.weight.device, dtype=head.weight.dtype
        )
        kr.matched.append(f"lm_head[{start}:{end}]")
    elif head is not None and head.weight is not emb:
        kr.missing.append(f"lm_head[{start}:{end}]")
        ctx.warn(
            "no lm_head rows saved and the LM head is untied: its new rows keep their initialisation"
        )
    model.config.pad_token_id = pad_id(space) if space else 0
    ctx.hp(
        row_start=start,
        row_end=end,
        has_lm_head=rows.get("lm_head") is not None,
        pad_token_id=model.config.pad_token_id,
    )
    return model
