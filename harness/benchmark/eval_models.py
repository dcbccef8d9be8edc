"""Which base to compare against, building it, loading the trained model onto it, tokenizers.

The base is the one the user names (``--base_model``), else the one the checkpoint records, else
the artifact's metadata. It is built once, evaluated, then handed to ``loaders.load_checkpoint``
as a module: the loader applies the checkpoint to that very model and proves, with its own
before/after probe, that the logits changed. So "base" in the report is exactly the model the
checkpoint was applied to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.sides import EvalModel
from harness.contracts.checkpoint_meta import BASE_INIT_SEED_KEY, EMBEDDED_PREFIX, MODEL_CONFIG_KEY
from harness.models.prefix_lm import PrefixLM
from loaders import LoadedCheckpoint, load_checkpoint
from loaders.base import load_base
from loaders.context import LoadContext
from loaders.embedded import build_embedded
from loaders.io import read_header
from loaders.load_report import LoadReport

RECORDED_BASE_KEYS = ("base_model", "base_model_name_or_path", "base_llm")
"""Where the formats' ``describe`` report the base they were trained on."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


@dataclass
class BaseChoice:
    """The base model spec and where it came from (``None`` when no base is known)."""

    spec: str | None
    origin: str
    notes: list[str] = field(default_factory=list)


def recorded_base(info: dict[str, Any]) -> str | None:
    """The base model a checkpoint records (``inspect_checkpoint``'s details)."""
    details = info.get("details", {})
    for key in RECORDED_BASE_KEYS:
        if isinstance(details.get(key), str) and details[key]:
            return details[key]
    path = Path(info.get("path", ""))
    if path.is_file() and path.suffix == ".safetensors":
        return read_header(path)[1].get("base_model") or None
    return None


def choose_base(flag: str | None, info: dict[str, Any], metadata: dict[str, Any]) -> BaseChoice:
    """``--base_model``, else the checkpoint's record, else the artifact's ``base_model``."""
    recorded = recorded_base(info)
    meta = metadata.get("base_model") if isinstance(metadata.get("base_model"), str) else None
    choice = (
        BaseChoice(flag, "--base_model")
        if flag
        else BaseChoice(recorded, "recorded in the checkpoint")
        if recorded
        else BaseChoice(meta, "W&B artifact metadata")
        if meta
        else BaseChoice(None, "none known")
    )
    for name, other in (("the checkpoint records", recorded), ("the artifact metadata", meta)):
        if other and choice.spec and other != choice.spec:
            choice.notes.append(f"{name} base {other!r}; using {choice.spec!r} ({choice.origin})")
    return choice


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; an unavailable CUDA device is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise BenchmarkInputError(f"--device {name!r}: {e}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchmarkInputError(f"--device {name}: CUDA is not available here; use --device cpu")
    return device


def _is_vision(spec: str) -> bool:
    cfg = Path(spec).expanduser() / "config.json"
    try:
        return "vision_config" in json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def build_base(
    spec: str, checkpoint: Path, device: torch.device, dtype: str | None, remote: bool
) -> nn.Module:
    """The base model as an eval-mode module on ``device``.

    ``harness:tiny-vlm`` is rebuilt from the checkpoint's recorded config and init seed; a
    transformers VLM folder becomes an ``hf-vlm`` PrefixLM; anything else is a causal LM
    loaded exactly as the loaders load a base (``loaders.base.load_base``).
    """
    ctx = LoadContext(
        source=checkpoint,
        report=LoadReport(source=str(checkpoint)),
        dtype=dtype,
        allow_remote_code=remote,
    )
    if spec.startswith(EMBEDDED_PREFIX):
        meta = read_header(checkpoint)[1] if checkpoint.suffix == ".safetensors" else {}
        model = build_embedded(
            spec, meta.get(MODEL_CONFIG_KEY), checkpoint, meta.get(BASE_INIT_SEED_KEY)
        )
    elif _is_vision(spec):
        from harness.contracts.config import ModelConfig
        from harness.models import build_model

        model, _ = build_model(ModelConfig(name="hf-vlm", path=spec, trust_remote_code=remote))
    else:
        model = load_base(spec, ctx, checkpoint)
    ctx.device = device
    ctx.place(model)
    return model.eval()


def load_trained(
    path: Path, base: nn.Module | str | None, device: torch.device, options: dict[str, Any]
) -> LoadedCheckpoint:
    """``load_checkpoint`` onto ``base`` (a module is changed in place), with the probe on."""
    module = base.decoder if isinstance(base, PrefixLM) and _is_hf_vlm(base) else base
    loaded = load_checkpoint(path, base_model=module, device=device, probe=True, **options)
    if isinstance(base, PrefixLM) and _is_hf_vlm(base) and not isinstance(loaded.model, PrefixLM):
        from harness.models.hf_vlm import HFVisionLM

        loaded.model = HFVisionLM(loaded.model, base.processor, base.path).eval()
    return loaded


def _is_hf_vlm(model: nn.Module) -> bool:
    return hasattr(model, "processor") and hasattr(model, "base_vlm")


def tokenizer_candidates(*specs: str | Path | None) -> list[str]:
    """Folders holding tokenizer files (and hub ids) among ``specs``, each with its parent."""
    out: list[str] = []
    for spec in specs:
        if spec is None or str(spec).startswith(EMBEDDED_PREFIX):
            continue
        p = Path(spec).expanduser()
        if not p.exists():
            if "/" in str(spec) and not str(spec).startswith((".", "/", "~")):
                out.append(str(spec))  # a hub id: resolves from the local cache when offline
            continue
        for d in (p if p.is_dir() else p.parent, (p if p.is_dir() else p.parent).parent):
            if any((d / f).is_file() for f in TOKENIZER_FILES) and str(d) not in out:
                out.append(str(d))
    return out


def find_tokenizer(label: str, candidates: list[str], remote: bool) -> tuple[Any, str]:
    """The first candidate ``AutoTokenizer`` can load; an input error listing every one tried."""
    from transformers import AutoTokenizer

    tried = []
    for c in candidates:
        try:
            tok = AutoTokenizer.from_pretrained(c, trust_remote_code=remote)
        except (OSError, ValueError, KeyError) as e:
            tried.append(f"{c} ({type(e).__name__})")
            continue
        if tok.eos_token_id is None:
            tried.append(f"{c} (no EOS token)")
            continue
        return tok, c
    raise BenchmarkInputError(
        f"no tokenizer for the {label} model: tried {'; '.join(tried) or 'nothing'}; "
        "pass --tokenizer PATH (a folder with tokenizer.json / tokenizer_config.json)"
    )


def eval_model(
    label: str, module: nn.Module, device: torch.device, candidates: list[str], remote: bool
) -> EvalModel:
    """A module ready to evaluate, with its tokenizer (a PrefixLM carries its own)."""
    if isinstance(module, PrefixLM):
        return EvalModel(label, module.eval(), module.tokenizer, device, "the model's own")
    tok, source = find_tokenizer(label, candidates, remote)
    return EvalModel(label, module.eval(), tok, device, source)
