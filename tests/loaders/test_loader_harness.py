"""Round trip: checkpoints the harness writes (format metadata) load back with identical logits."""

from __future__ import annotations

import json

import torch
from loader_fixtures import logits_of
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaForCausalLM

from loaders import inspect_checkpoint, load_checkpoint


def _meta(kind: str, base: str, **extra: str) -> dict[str, str]:
    return {
        "format": kind,
        "base_model": base,
        "step": "10",
        "metric_name": "val_f1",
        "metric_value": "0.5",
        "config_hash": "abc",
        "harness_version": "0.1.0",
        **extra,
    }


def test_harness_lora_roundtrip_on_transformers_model(tmp_path, base_dir):
    torch.manual_seed(4)
    cfg = LoraConfig(
        r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    trained = get_peft_model(LlamaForCausalLM.from_pretrained(base_dir), cfg).eval()
    tensors = {}
    for name, t in trained.state_dict().items():
        if ".lora_" in name:  # contract: module path without PEFT prefixes, A [in, r], B [r, out]
            mod, ab = name.removeprefix("base_model.model.").split(".lora_")
            tensors[f"{mod}.lora_{ab[0]}"] = t.t().contiguous()
    f = tmp_path / "best.safetensors"
    save_file(
        tensors,
        f,
        metadata=_meta(
            "harness-lora",
            str(base_dir),
            lora_rank="4",
            lora_alpha="16.0",
            lora_dropout="0.0",
            lora_targets='["q_proj", "v_proj"]',
        ),
    )
    assert inspect_checkpoint(f)["format"] == "lora-file"
    loaded = load_checkpoint(f)
    assert loaded.format == "lora-file" and "harness-lora" in loaded.report.reason
    assert (
        loaded.report.hyperparameters["lora_alpha"] == 16.0
        and loaded.report.hyperparameters["step"] == "10"
    )
    assert not loaded.report.key_report("lora").missing
    torch.testing.assert_close(logits_of(loaded.model), logits_of(trained), atol=1e-5, rtol=1e-5)


def test_harness_full_roundtrip_tiny_vlm(tmp_path):
    from harness import models
    from harness.contracts import config

    mcfg = config.ModelConfig(
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        intermediate_size=64,
        vision_channels=8,
        image_tokens=4,
    )
    torch.manual_seed(0)
    model, _ = models.build_model(mcfg)
    f = tmp_path / "full.safetensors"
    save_file(
        {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
        f,
        metadata=_meta(
            "harness-full", "harness:tiny-vlm", model_config=json.dumps(config.to_dict(mcfg))
        ),
    )
    loaded = load_checkpoint(f)
    assert loaded.format == "state-dict" and loaded.report.base_model == "harness:tiny-vlm"
    assert not loaded.report.key_report("model").missing
    ids = torch.tensor([loaded.report.probe.input_ids])
    torch.testing.assert_close(logits_of(loaded.model.decoder, ids), logits_of(model.decoder, ids))
