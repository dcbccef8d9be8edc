"""Checkpoints the harness writes: safetensors files that describe themselves.

The format (names, header keys, the embedded-model prefix, the version) is defined once in
``harness/contracts/checkpoint_meta.py``; ``loaders/`` reads it back through the same constants.
``harness-lora`` module paths are those of the model without PEFT.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors.torch import save_file

from harness.contracts import checkpoint_meta as cm
from harness.contracts.config import CellConfig, to_dict
from harness.contracts.identity import config_hash
from harness.models.prefix_lm import PrefixLM

_OS_ERROR = re.compile(r"I/O error: .*\(os error (\d+)\)")
"""How safetensors (Rust) words an operating-system error of a write."""
_PEFT_KEY = re.compile(r"^(?P<mod>.*)\.lora_(?P<ab>[AB])\.(?P<adapter>[^.]+)\.weight$")


def base_model_name(cfg: CellConfig) -> str:
    if cfg.model.name == "tiny-vlm":
        return cm.embedded_base(cfg.model.name)
    return str(cfg.model.path)


def _strip_peft(name: str) -> str:
    return name.replace("decoder.base_model.model.", "decoder.", 1)


def load_lora_state(model: PrefixLM, tensors: dict[str, torch.Tensor]) -> None:
    """Put a ``harness-lora`` file's tensors back into the PEFT-wrapped model (inverse of
    ``lora_state``): ``A [in, r]`` / ``B [r, out]`` transposed to PEFT's layout, extras as named."""
    state = model.state_dict()
    peft_name = {}
    for name in state:
        match = _PEFT_KEY.match(name)
        if match:
            peft_name[f"{_strip_peft(match['mod'])}.lora_{match['ab']}"] = name
    unwrapped = {_strip_peft(n): n for n in state}  # extras saved without PEFT's wrapper
    update = {
        peft_name[k] if k in peft_name else unwrapped.get(k, k): v.t() if k in peft_name else v
        for k, v in tensors.items()
    }
    model.load_state_dict({k: v for k, v in update.items() if k in state}, strict=False)


def restore_checkpoint(model: PrefixLM, cfg: CellConfig, path: Path, device: str) -> None:
    """Load a checkpoint written by ``save_checkpoint`` back into the model it came from."""
    from safetensors.torch import load_file

    tensors = load_file(str(path), device=device)
    if cfg.train.method == "lora":
        load_lora_state(model, tensors)
    else:
        model.load_state_dict(tensors)


def lora_state(model: PrefixLM, extra_modules: list[str]) -> dict[str, torch.Tensor]:
    """Seed-000 layout from a PEFT-wrapped decoder: A as [in, r], B as [r, out], + extra modules."""
    out: dict[str, torch.Tensor] = {}
    # An extra module may be an alias (hf-vlm's `projector`): save it under its registered name.
    registered = {id(m): n for n, m in model.named_modules()}
    extra_modules = [registered.get(id(model.get_submodule(m)), m) for m in extra_modules]
    for name, tensor in model.state_dict().items():
        match = _PEFT_KEY.match(name)
        if match:
            key = f"{_strip_peft(match['mod'])}.lora_{match['ab']}"
            out[key] = tensor.detach().t().contiguous()
            continue
        if any(name == m or name.startswith(m + ".") for m in extra_modules):
            out[_strip_peft(name)] = tensor.detach().contiguous()
        elif "modules_to_save" in name:
            out[_strip_peft(name).replace(".modules_to_save.default", "")] = tensor.detach()
    return out


def lora_targets(model: PrefixLM, cfg: CellConfig) -> list[str]:
    """What ``lora_targets`` records: the configured suffixes, or, where the model scopes them
    (hf-vlm: the language model only, not the vision tower's q_proj), the adapted modules' names."""
    names = list(cfg.train.lora.target_modules)
    if isinstance(model.lora_target_modules(names), list) or not hasattr(
        model.decoder, "peft_config"
    ):
        return names
    base = model.decoder.get_base_model()
    return [n for n, m in base.named_modules() if hasattr(m, "lora_A")]


def metadata(
    cfg: CellConfig, step: int, metric: float | None, targets: list[str] | None = None
) -> dict[str, str]:
    """The header metadata of a checkpoint (``checkpoint_meta``'s keys, all strings)."""
    lora = cfg.train.lora
    meta = {
        cm.FORMAT_KEY: cm.FORMAT_LORA if cfg.train.method == "lora" else cm.FORMAT_FULL,
        cm.BASE_MODEL_KEY: base_model_name(cfg),
        cm.MODEL_CONFIG_KEY: json.dumps(to_dict(cfg.model), sort_keys=True),
        cm.BASE_INIT_SEED_KEY: str(cfg.seed),
        cm.STEP_KEY: str(step),
        cm.METRIC_NAME_KEY: cfg.eval.best_metric,
        cm.METRIC_VALUE_KEY: "" if metric is None else repr(metric),
        cm.CONFIG_HASH_KEY: config_hash(cfg),
        cm.VERSION_KEY: cm.harness_version(),
    }
    if cfg.train.method == "lora":
        meta |= {
            cm.LORA_RANK_KEY: str(lora.r),
            cm.LORA_ALPHA_KEY: repr(lora.alpha),
            cm.LORA_DROPOUT_KEY: repr(lora.dropout),
            cm.LORA_TARGETS_KEY: json.dumps(lora.target_modules if targets is None else targets),
        }
    return meta


def save_checkpoint(
    model: PrefixLM, cfg: CellConfig, path: Path, step: int, metric: float | None
) -> Path:
    """Write one self-describing safetensors file atomically (temp file + rename)."""
    targets = None
    if cfg.train.method == "lora":
        tensors = lora_state(model, cfg.train.lora.extra_trainable)
        targets = lora_targets(model, cfg)
    else:
        tensors, seen = {}, set()
        for k, v in model.state_dict().items():
            # Tied weights (Gemma's lm_head is its embedding) share storage, which safetensors
            # refuses: the second name gets its own copy of the same values.
            ptr = v.untyped_storage().data_ptr()
            tensors[k] = v.detach().clone() if ptr in seen else v.detach().contiguous()
            seen.add(ptr)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file(
            {k: v.cpu() for k, v in tensors.items()},
            str(tmp),
            metadata=metadata(cfg, step, metric, targets),
        )
    except BaseException as exc:  # e.g. a full disk: no half-written file is left behind
        tmp.unlink(missing_ok=True)
        os_error = _OS_ERROR.search(str(exc))
        if os_error:  # safetensors reports an I/O error as text: make it the OSError it is
            errno = int(os_error.group(1))
            raise OSError(errno, os.strerror(errno), str(path)) from exc
        raise
    os.replace(tmp, path)
    return path


def save_peft_dir(model: PrefixLM, path: Path, extra_modules: list[str] = ()) -> Path:
    """The PEFT adapter directory (adapter_config.json + adapter_model.safetensors).

    Extra trained modules that live inside the PEFT-wrapped decoder (hf-vlm's ``projector``) go
    in as PEFT's ``modules_to_save``, keyed as PEFT saves them, so that the folder loads as the
    model that was trained (not with the base's projector). Those outside it (tiny-vlm's) cannot.
    """
    from safetensors import safe_open

    model.decoder.save_pretrained(str(path))
    base = model.decoder.get_base_model()
    inside = {id(m): n for n, m in base.named_modules()}
    names = [inside.get(id(model.get_submodule(m))) for m in extra_modules]
    names = [n for n in names if n]
    if not names:
        return path
    weights = path / "adapter_model.safetensors"
    with safe_open(str(weights), "pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
        meta = fh.metadata()
    for name in names:
        for key, value in base.get_submodule(name).state_dict().items():
            tensors[f"base_model.model.{name}.{key}"] = value.detach().cpu().contiguous()
    save_file(tensors, str(weights), metadata=meta)
    config_path = path / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["modules_to_save"] = sorted({*(config.get("modules_to_save") or []), *names})
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
