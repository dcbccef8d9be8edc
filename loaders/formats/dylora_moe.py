"""``dylora-moe`` (seed 002): LoRA experts ``expert_{i}`` + a router gate over one base model.

Layouts: (1) ``model.safetensors`` holding the whole module (``foundation_model.``-prefixed PEFT
keys + ``router.gate.*``) with the minimal config.json; (2) ``peft_separated``: the base config +
``_dylora_*`` fields, ``peft_adapters/expert_{i}.pt`` or ``peft_adapters/expert_{i}/`` and
``router.safetensors``; (3) legacy ``dylo_moe_state/router.pt`` with PEFT ``expert_{i}/`` dirs.
The prefixes are mapped (the seed's "fix" dropped them all), and the logit probe proves it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from loaders.apply import apply_state_dict
from loaders.base import load_base
from loaders.context import LoadContext
from loaders.errors import (
    CorruptCheckpointError,
    InvalidOptionError,
    MissingKeysError,
    NothingLoadableError,
    RankMismatchError,
    ShapeMismatchError,
)
from loaders.io import (
    load_pickle,
    load_safetensors,
    load_tensors,
    read_header,
    read_json,
    unwrap_state_dict,
)
from loaders.moe import DyLoRAMoEModel, expert_name

NAME = "dylora-moe"
MODEL_TYPE = "dylora-moe"
SINGLE = "model.safetensors"
PREFIX = "foundation_model."
ROUTER_PREFIX = "router.gate."
ADAPTERS = "peft_adapters"
ROUTER_FILE = "router.safetensors"
LEGACY = "dylo_moe_state"
LEGACY_ROUTER = "router.pt"
DEFAULTS = {"num_experts": None, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05}
_LORA_KEY = re.compile(r"^(?P<mod>.+)\.(?P<leaf>lora_[AB])(?:\.(?P<adapter>[^.]+))?\.weight$")


def _dir(path: Path) -> Path:
    return path.parent if path.is_file() else path


def _config(d: Path) -> dict[str, Any]:
    return read_json(d / "config.json") if (d / "config.json").is_file() else {}


def _legacy_dir(d: Path) -> Path | None:
    return next((p for p in (d / LEGACY, d.parent / LEGACY) if (p / LEGACY_ROUTER).is_file()), None)


def detect(path: Path) -> str | None:
    """config ``model_type: dylora-moe``, a ``peft_adapters``/``dylo_moe_state`` dir, or prefixed keys."""
    d = _dir(path)
    if _config(d).get("model_type") == MODEL_TYPE:
        return "config.json model_type is 'dylora-moe'"
    if path.is_dir() and (d / ADAPTERS).is_dir():
        return f"{ADAPTERS}/ directory"
    if path.is_dir() and (d / LEGACY / LEGACY_ROUTER).is_file():
        return f"legacy {LEGACY}/{LEGACY_ROUTER}"
    single = d / SINGLE if path.is_dir() else path
    if single.is_file() and single.suffix == ".safetensors":
        keys = read_header(single)[0]
        if any(k.startswith(PREFIX) for k in keys) and ROUTER_PREFIX + "weight" in keys:
            return f"{single.name} holds '{PREFIX}' keys and '{ROUTER_PREFIX}weight'"
    return None


def hyperparameters(d: Path) -> dict[str, Any]:
    """Both config layouts: the minimal one (plain fields) and the base config + ``_dylora_*``."""
    cfg = _config(d)
    hp = {k: cfg.get(k, cfg.get(f"_dylora_{k}", v)) for k, v in DEFAULTS.items()}
    hp["layout"] = cfg.get("_dylora_format", "single" if (d / SINGLE).is_file() else "legacy")
    hp["base_model"] = cfg.get("base_model_name_or_path") or cfg.get("_name_or_path")
    for k in ("checkpoint_type", "saved_at", "_dylora_saved_at", "_dylora_trained"):
        if k in cfg:
            hp[k.removeprefix("_dylora_")] = cfg[k]
    return hp


def describe(path: Path) -> dict[str, Any]:
    """Recorded hyperparameters and the files of each layout found."""
    d = _dir(path)
    info = {"format": NAME, **hyperparameters(d)}
    info["files"] = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())[:50]
    return info


def _normalise(sd: dict[str, torch.Tensor]) -> dict[int | None, dict[str, torch.Tensor]]:
    """Split LoRA tensors by expert; keys become PEFT's adapter-less ``...lora_A.weight``."""
    out: dict[int | None, dict[str, torch.Tensor]] = {}
    for key, t in sd.items():
        m = _LORA_KEY.match(key.removeprefix(PREFIX))
        if m is None:
            continue
        adapter = m["adapter"]
        idx = int(adapter.split("_")[1]) if adapter and adapter.startswith("expert_") else None
        mod = (
            m["mod"] if m["mod"].startswith("base_model.model.") else "base_model.model." + m["mod"]
        )
        out.setdefault(idx, {})[f"{mod}.{m['leaf']}.weight"] = t
    return out


def _experts(
    d: Path, hp: dict[str, Any]
) -> tuple[
    dict[int, dict[str, torch.Tensor]], dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]
]:
    """(expert tensors, other foundation tensors, router gate tensors, files used)."""
    files, other, router = [], {}, {}
    experts: dict[int, dict[str, torch.Tensor]] = {}
    if (d / SINGLE).is_file():
        sd = load_safetensors(d / SINGLE)
        files.append(SINGLE)
        by = _normalise(sd)
        experts.update({i: v for i, v in by.items() if i is not None})
        other = {
            k.removeprefix(PREFIX): v
            for k, v in sd.items()
            if k.startswith(PREFIX) and ".lora_" not in k
        }
        router = {
            k.removeprefix(ROUTER_PREFIX): v for k, v in sd.items() if k.startswith(ROUTER_PREFIX)
        }
    for root in (d / ADAPTERS, d):
        for p in sorted(root.glob("expert_*")):
            i = int(p.stem.split("_")[1]) if p.stem.split("_")[1].isdigit() else None
            if i is None or i in experts:
                continue
            if p.suffix == ".pt":
                sd = unwrap_state_dict(load_pickle(p), p)
            elif p.is_dir() and (p / "adapter_model.safetensors").is_file():
                sd = load_tensors(p / "adapter_model.safetensors")
                acfg = (
                    read_json(p / "adapter_config.json")
                    if (p / "adapter_config.json").is_file()
                    else {}
                )
                hp.update(
                    {
                        k: acfg[v]
                        for k, v in (("lora_r", "r"), ("lora_alpha", "lora_alpha"))
                        if v in acfg
                    }
                )
            else:
                continue
            files.append(str(p.relative_to(d)))
            experts[i] = next(iter(_normalise(sd).values()), {})
    if not router and (d / ROUTER_FILE).is_file():
        router = {k.removeprefix("gate."): v for k, v in load_safetensors(d / ROUTER_FILE).items()}
        files.append(ROUTER_FILE)
    legacy = _legacy_dir(d)
    if not router and legacy is not None:
        state = load_pickle(legacy / LEGACY_ROUTER)
        if not isinstance(state, dict) or "gate_state_dict" not in state:
            raise CorruptCheckpointError(
                legacy / LEGACY_ROUTER, "no 'gate_state_dict'", "re-save the router"
            )
        router = dict(state["gate_state_dict"])
        files.append(str((legacy / LEGACY_ROUTER).relative_to(d.parent)))
        hp.update(
            {f"router_{k}": state[k] for k in ("top_k", "temperature", "input_size") if k in state}
        )
    return experts, other, router, files


def _rank(experts: dict[int, dict[str, torch.Tensor]], hp: dict[str, Any], d: Path) -> int:
    ranks = {int(t.shape[0]) for sd in experts.values() for k, t in sd.items() if ".lora_A." in k}
    if len(ranks) != 1 or (hp.get("lora_r") and int(hp["lora_r"]) not in ranks):
        raise RankMismatchError(
            d,
            f"LoRA rank from the tensors is {sorted(ranks)} but config.json says lora_r={hp.get('lora_r')}",
            "use the config.json saved with these weights",
        )
    return ranks.pop()


def load(path: Path, ctx: LoadContext) -> nn.Module:
    """Rebuild the experts + router on the base model, load every trained tensor, route as trained."""
    from peft import LoraConfig, get_peft_model
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

    d = _dir(path)
    hp = hyperparameters(d)
    experts, other, router, files = _experts(d, hp)
    ctx.report.files = files
    if not experts:
        raise NothingLoadableError(
            d,
            "DyLoRA-MoE checkpoint without expert LoRA weights",
            f"expected {SINGLE} or {ADAPTERS}/expert_<i>",
        )
    n = int(hp["num_experts"] or (router["weight"].shape[0] if router else max(experts) + 1))
    if ctx.expert is not None and not 0 <= ctx.expert < n:  # before the base model is loaded
        raise InvalidOptionError(
            d, f"expert={ctx.expert} but the checkpoint has {n} experts", f"pass expert=0..{n - 1}"
        )
    rank = _rank(experts, hp, d)
    targets = sorted(
        {k.split(".lora_")[0].rsplit(".", 1)[-1] for sd in experts.values() for k in sd}
    )
    ctx.hp(
        **{k: v for k, v in hp.items() if k not in ("base_model", "num_experts", "lora_r")},
        num_experts=n,
        lora_r=rank,
        target_modules=targets,
    )
    base = load_base(None, ctx, d, recorded=hp["base_model"])
    ctx.probe_before(base)
    lcfg = LoraConfig(
        r=rank,
        lora_alpha=float(hp["lora_alpha"]),
        lora_dropout=float(hp["lora_dropout"]),
        target_modules=targets,
    )
    peft_model = get_peft_model(base, lcfg, adapter_name=expert_name(0))
    for i in range(1, n):
        peft_model.add_adapter(expert_name(i), lcfg)
    if other:
        apply_state_dict(peft_model, other, ctx, "foundation", d / SINGLE, require_all=False)
    kr = ctx.report.key_report("experts")
    for i in range(n):
        expected = set(get_peft_model_state_dict(peft_model, adapter_name=expert_name(i)))
        got = experts.get(i, {})
        kr.matched += [f"{expert_name(i)}:{k}" for k in sorted(expected & set(got))]
        kr.missing += [f"{expert_name(i)}:{k}" for k in sorted(expected - set(got))]
        kr.unexpected += [f"{expert_name(i)}:{k}" for k in sorted(set(got) - expected)]
        if got:
            set_peft_model_state_dict(
                peft_model,
                {k: v for k, v in got.items() if k in expected},
                adapter_name=expert_name(i),
            )
    _check_missing(kr.missing + kr.unexpected, ctx, d)
    if ctx.expert is not None:
        return _pin(peft_model, ctx)
    hidden = int(base.get_input_embeddings().weight.shape[1])
    moe = DyLoRAMoEModel(peft_model, n, hidden, routing=ctx.routing, temperature=ctx.temperature)
    _load_router(moe, router, ctx, d)
    return moe


def _check_missing(bad: list[str], ctx: LoadContext, d: Path) -> None:
    if not bad:
        return
    if ctx.strict:
        raise MissingKeysError(
            d,
            f"strict: {len(bad)} expert LoRA keys missing or unmatched, e.g. {bad[:2]}",
            "use the complete checkpoint",
        )
    ctx.warn(
        f"{len(bad)} expert LoRA keys missing or unmatched (those experts act as the base model), e.g. {bad[:2]}"
    )


def _pin(peft_model: nn.Module, ctx: LoadContext) -> nn.Module:
    ctx.note(
        f"expert {ctx.expert} pinned and merged into a plain transformers model (router unused)"
    )
    return peft_model.merge_and_unload(adapter_names=[expert_name(ctx.expert)])


def _load_router(
    moe: DyLoRAMoEModel, router: dict[str, torch.Tensor], ctx: LoadContext, d: Path
) -> None:
    kr = ctx.report.key_report("router")
    if not router:
        kr.missing += ["router.gate.weight", "router.gate.bias"]
        raise MissingKeysError(
            d,
            "no router weights found (model.safetensors router.gate.*, router.safetensors, dylo_moe_state/router.pt)",
            "pass expert=i to use one expert without routing",
        )
    gate = moe.router.gate
    for name, t in router.items():
        own = getattr(gate, name, None)
        if own is None:
            kr.unexpected.append(f"router.gate.{name}")
        elif own.shape != t.shape:
            raise ShapeMismatchError(
                d,
                f"router.gate.{name} is {list(t.shape)}, model needs {list(own.shape)}",
                "check num_experts and the base model",
            )
        else:
            with torch.no_grad():
                own.copy_(t)
            kr.matched.append(f"router.gate.{name}")
    kr.missing += [f"router.gate.{n}" for n in ("weight", "bias") if n not in router]
    _check_missing([k for k in kr.missing if k.startswith("router")], ctx, d)
