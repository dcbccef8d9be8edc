"""``peft-adapter``: ``adapter_config.json`` + ``adapter_model.safetensors``, through PEFT.

The config is checked before PEFT builds anything; of PEFT's own errors only those that mean the
adapter does not fit the base (shapes, target modules) are translated; any other error propagates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from loaders.base import load_base
from loaders.context import LoadContext
from loaders.errors import (
    CorruptCheckpointError,
    MissingKeysError,
    RankMismatchError,
    ShapeMismatchError,
    UnmatchedKeysError,
)
from loaders.io import load_tensors, read_header, read_json

NAME = "peft-adapter"
CONFIG = "adapter_config.json"
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
_SIZE_MISMATCH = re.compile(
    r"size mismatch for (?P<key>\S+): copying a param with shape torch\.Size\((?P<saved>\[.*?\])\) "
    r"from checkpoint, the shape in current model is torch\.Size\((?P<model>\[.*?\])\)"
)


def _weights(path: Path) -> Path | None:
    return next((path / w for w in WEIGHTS if (path / w).is_file()), None)


def detect(path: Path) -> str | None:
    """A directory with ``adapter_config.json`` and adapter weights."""
    if path.is_dir() and (path / CONFIG).is_file() and _weights(path):
        return f"{CONFIG} + {_weights(path).name}"
    return None


def describe(path: Path) -> dict[str, Any]:
    """The adapter's recorded hyperparameters."""
    cfg = read_json(path / CONFIG)
    w = _weights(path)
    if w is not None and w.suffix == ".safetensors":
        read_header(w)
    keep = (
        "base_model_name_or_path",
        "peft_type",
        "r",
        "lora_alpha",
        "lora_dropout",
        "target_modules",
        "modules_to_save",
    )
    return {"format": NAME, **{k: cfg.get(k) for k in keep if k in cfg}}


def load(path: Path, ctx: LoadContext) -> nn.Module:
    """``PeftModel.from_pretrained`` onto the base; key accounting; optional merge."""
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict

    info = describe(path)
    weights = _weights(path)
    ctx.report.files = [CONFIG, weights.name]
    ctx.hp(**{k: v for k, v in info.items() if k != "base_model_name_or_path"})
    config = _peft_config(path)
    base = load_base(None, ctx, path, recorded=info.get("base_model_name_or_path"))
    ctx.probe_before(base)
    tensors = load_tensors(weights)
    _check_rank(path, config, tensors)
    try:
        model = PeftModel.from_pretrained(base, str(path))
    except RuntimeError as e:  # load_state_dict: the adapter's shapes are not the base's
        if "size mismatch" not in str(e):
            raise
        raise _shape_mismatch(path, e, info) from e
    except ValueError as e:  # PEFT's NoMatchingPeftModuleError
        if "not found in the base model" not in str(e):
            raise
        raise UnmatchedKeysError(
            path,
            f"base/adapter mismatch: {str(e).splitlines()[0]}",
            _base_hint(info),
        ) from e
    saved = set(tensors)
    expected = set(get_peft_model_state_dict(model))
    kr = ctx.report.key_report("adapter")
    kr.matched.extend(sorted(saved & expected))
    kr.missing.extend(sorted(expected - saved))
    kr.unexpected.extend(sorted(saved - expected))
    if kr.missing and ctx.strict:
        raise MissingKeysError(
            path, f"strict: adapter keys missing, e.g. {kr.missing[:3]}", "use the complete adapter"
        )
    if kr.unexpected or kr.missing:
        ctx.warn(f"adapter keys: {len(kr.missing)} missing, {len(kr.unexpected)} unexpected")
    if ctx.merge:
        model = model.merge_and_unload()
        ctx.note("adapter merged into the base weights")
    return model


def _peft_config(path: Path) -> Any:
    """The adapter's PEFT config, or CorruptCheckpointError naming what is wrong with it."""
    from peft import PeftConfig

    try:
        config = PeftConfig.from_pretrained(str(path))
    except (KeyError, TypeError, ValueError) as e:  # unknown/missing peft_type, bad fields
        raise CorruptCheckpointError(
            path / CONFIG, f"not a valid PEFT adapter config ({type(e).__name__}: {e})", "fix it"
        ) from e
    r = getattr(config, "r", None)
    if r is not None and not (isinstance(r, int) and not isinstance(r, bool) and r > 0):
        raise CorruptCheckpointError(path / CONFIG, f"r={r!r} is not a positive integer", "fix it")
    return config


def _check_rank(path: Path, config: Any, tensors: dict[str, torch.Tensor]) -> None:
    """``r`` in the config against the rank of the saved ``lora_A`` weights."""
    r = getattr(config, "r", None)
    if r is None or getattr(config, "rank_pattern", None):
        return
    ranks = {int(t.shape[0]) for k, t in tensors.items() if ".lora_A." in k and t.dim() == 2}
    if ranks and ranks != {r}:
        raise RankMismatchError(
            path,
            f"{CONFIG} says r={r} but the saved lora_A weights have rank {sorted(ranks)}",
            f"fix r in {CONFIG} or use the weights saved with it",
        )


def _shape_mismatch(path: Path, e: RuntimeError, info: dict[str, Any]) -> ShapeMismatchError:
    found = _SIZE_MISMATCH.findall(str(e))
    if found:
        key, saved, model = found[0]
        detail = f"{key} is {saved} in the adapter but {model} in the model"
    else:
        detail = str(e).strip().splitlines()[-1]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return ShapeMismatchError(
        path,
        f"base/adapter mismatch: the adapter does not fit this base: {detail}{more}",
        _base_hint(info),
    )


def _base_hint(info: dict[str, Any]) -> str:
    recorded = info.get("base_model_name_or_path")
    trained_on = f" ({CONFIG} records {recorded!r})" if recorded else ""
    return f"pass the base model the adapter was trained on{trained_on}"
