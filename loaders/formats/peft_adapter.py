"""``peft-adapter``: ``adapter_config.json`` + ``adapter_model.safetensors``, through PEFT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from loaders.base import load_base
from loaders.context import LoadContext
from loaders.errors import CorruptCheckpointError, MissingKeysError
from loaders.io import load_tensors, read_header, read_json

NAME = "peft-adapter"
CONFIG = "adapter_config.json"
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


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
    base = load_base(None, ctx, path, recorded=info.get("base_model_name_or_path"))
    ctx.probe_before(base)
    saved = set(load_tensors(weights))
    try:
        model = PeftModel.from_pretrained(base, str(path))
    except Exception as e:
        raise CorruptCheckpointError(
            path, f"PEFT could not load the adapter ({e})", "check that the base model matches"
        ) from e
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
