"""What trains: the full text decoder (+ projector, vision unless frozen) or PEFT LoRA adapters."""

from __future__ import annotations

from torch import nn

from harness.contracts.config import CellConfig
from harness.models.prefix_lm import PrefixLM


class TrainableError(ValueError):
    """The config names modules the model does not have."""


def _module(model: nn.Module, path: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        top = sorted(n for n, _ in model.named_children())
        raise TrainableError(
            f"`train.lora.extra_trainable`: model has no module {path!r} (top-level modules: "
            f"{', '.join(top)})"
        ) from None


def setup_trainable(model: PrefixLM, cfg: CellConfig) -> dict[str, int]:
    """Freeze/unfreeze (and wrap with PEFT for method=lora); returns parameter counts."""
    tc = cfg.train
    if tc.method == "full":
        model.requires_grad_(True)
        if model.vision is not None and cfg.model.vision_frozen():
            model.vision.requires_grad_(False)
    else:
        from peft import LoraConfig, get_peft_model

        present = {name.rsplit(".", 1)[-1] for name, _ in model.decoder.named_modules()}
        missing = [t for t in tc.lora.target_modules if t not in present]
        if missing:
            raise TrainableError(
                f"`train.lora.target_modules`: {missing} not found in the decoder "
                f"(Linear layers it has include: {', '.join(sorted(present & _linear_names(model)))})"
            )
        extras = [_module(model, p) for p in tc.lora.extra_trainable]
        model.requires_grad_(False)
        model.decoder = get_peft_model(
            model.decoder,
            LoraConfig(
                r=tc.lora.r,
                lora_alpha=tc.lora.alpha,
                lora_dropout=tc.lora.dropout,
                target_modules=model.lora_target_modules(list(tc.lora.target_modules)),
                bias="none",
            ),
        )
        for module in extras:
            module.requires_grad_(True)
    if tc.gradient_checkpointing:
        model.base_decoder().gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "trainable_params": trainable,
        "total_params": sum(p.numel() for p in model.parameters()),
    }


def _linear_names(model: PrefixLM) -> set[str]:
    return {
        n.rsplit(".", 1)[-1] for n, m in model.decoder.named_modules() if isinstance(m, nn.Linear)
    }
