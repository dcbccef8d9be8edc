"""``hf-full``: a transformers directory (config.json + safetensors / sharded / pytorch_model.bin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from loaders.base import check_remote_code, load_base
from loaders.context import LoadContext
from loaders.errors import (
    CorruptCheckpointError,
    MissingKeysError,
    RemoteCodeError,
    ShapeMismatchError,
)
from loaders.io import read_header, read_json

NAME = "hf-full"
CONFIG = "config.json"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _weights(path: Path) -> list[Path]:
    return [path / f for f in WEIGHT_FILES if (path / f).is_file()]


def detect(path: Path) -> str | None:
    """A directory with ``config.json`` and transformers weight files."""
    if path.is_dir() and (path / CONFIG).is_file() and _weights(path):
        return f"{CONFIG} + {_weights(path)[0].name}"
    return None


def _shards(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(read_json(index).get("weight_map", {}).values()))
        return [path / n for n in names]
    return [p for p in [path / "model.safetensors"] if p.is_file()]


def describe(path: Path) -> dict[str, Any]:
    """Config summary and tensor counts, headers only."""
    cfg = read_json(path / CONFIG)
    n = 0
    for shard in _shards(path):
        if not shard.is_file():
            raise CorruptCheckpointError(
                shard, "shard listed in the index is missing", "re-download it"
            )
        n += len(read_header(shard)[0])
    return {
        "format": NAME,
        "model_type": cfg.get("model_type"),
        "architectures": cfg.get("architectures"),
        "tensors": n,
    }


def load(path: Path, ctx: LoadContext) -> nn.Module:
    """``from_pretrained`` with loading info recorded; optional base model for the logit check.

    transformers >= 5 builds the skeleton on the ``meta`` device and assigns the memory-mapped
    safetensors tensors (no random init, no copy when the dtype matches), which is what this
    loader wants; profiled in tests/benchmarks/test_loader_bench.py.
    """
    from transformers import AutoModelForCausalLM

    check_remote_code(read_json(path / CONFIG), ctx, path)
    describe(path)  # header checks catch truncated shards before transformers does
    ctx.report.files = [p.name for p in [path / CONFIG, *_weights(path), *_shards(path)]]
    if ctx.base_model is not None:
        base = load_base(None, ctx, path)
        ctx.probe_before(base)
        del base
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            str(path),
            dtype=ctx.torch_dtype(),
            trust_remote_code=ctx.allow_remote_code,
            output_loading_info=True,
        )
    except RuntimeError as e:
        if "mismatched_sizes" not in str(e):
            raise
        raise ShapeMismatchError(
            path,
            "the weights do not fit the model config.json describes ("
            + (", ".join(_mismatches(path, ctx)[:3]) or "transformers: mismatched sizes")
            + ")",
            "use the config.json saved with these weights",
        ) from e
    except (OSError, ValueError) as e:
        if "trust_remote_code" in str(e) or "custom code" in str(e):
            raise RemoteCodeError(
                path,
                "the model needs its repository's own Python code",
                "review that code, then pass allow_remote_code=True (CLI: --allow-remote-code)",
            ) from e
        raise CorruptCheckpointError(
            path, f"transformers could not load it ({e})", "check the files"
        ) from e
    kr = ctx.report.key_report("model")
    kr.missing.extend(info.get("missing_keys", []))
    kr.unexpected.extend(info.get("unexpected_keys", []))
    kr.mismatched.extend(str(m) for m in info.get("mismatched_keys", []))
    wanted = set(model.state_dict())
    kr.matched.extend(sorted(wanted - set(kr.missing)))
    if kr.missing and ctx.strict:
        raise MissingKeysError(
            path,
            f"strict: {len(kr.missing)} model keys are not in the checkpoint, e.g. {kr.missing[:3]}",
            "use the complete checkpoint, or pass strict=False to accept freshly initialised keys",
        )
    if kr.missing:
        ctx.warn(f"{len(kr.missing)} keys missing from the checkpoint were freshly initialised")
    return model


def _mismatches(path: Path, ctx: LoadContext) -> list[str]:
    """``key [file shape] vs [config shape]`` for the tensors that do not fit (a model built on
    the meta device from config.json: no memory, no init)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(path), trust_remote_code=ctx.allow_remote_code)
    with torch.device("meta"):
        wanted = AutoModelForCausalLM.from_config(config).state_dict()
    found: dict[str, list[int]] = {}
    for shard in _shards(path):
        found.update({k: s for k, (s, _) in read_header(shard)[0].items()})
    return [
        f"{k} is {found[k]} in the weights, {list(wanted[k].shape)} in config.json"
        for k in sorted(found)
        if k in wanted and list(wanted[k].shape) != found[k]
    ]
