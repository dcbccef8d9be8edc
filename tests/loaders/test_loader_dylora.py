"""dylora-moe (seed 002): every documented layout loads, routes as the original, and is not the base."""

from __future__ import annotations

import json

import pytest
import torch
from loader_fixtures import HIDDEN, IDS, logits_of
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from torch import nn
from transformers import LlamaForCausalLM

from loaders import DyLoRAMoEModel, MissingBaseModelError, RankMismatchError, load_checkpoint

E, R, ALPHA = 2, 4, 8


@pytest.fixture(scope="module")
def trained(base_dir):
    """A DyLoRA-MoE built the way train.py did: PEFT experts + router gate on one base."""
    torch.manual_seed(11)
    base = LlamaForCausalLM.from_pretrained(base_dir)
    cfg = LoraConfig(
        r=R,
        lora_alpha=ALPHA,
        lora_dropout=0.05,
        init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
    )
    peft_model = get_peft_model(base, cfg, adapter_name="expert_0")
    peft_model.add_adapter("expert_1", cfg)
    gate = nn.Linear(HIDDEN, E)
    with torch.no_grad():
        gate.weight.mul_(20)
    return peft_model.eval(), gate


def reference(trained, ids=IDS, dense=False):
    """The original's routing, written out independently of the loader."""
    peft_model, gate = trained
    with torch.no_grad(), peft_model.disable_adapter():
        h = peft_model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
    g = gate(h).mean(dim=1)[0]
    w = torch.softmax(g / 2.0, -1) if dense else nn.functional.one_hot(g.argmax(), E).float()
    out = 0
    for i in range(E):
        peft_model.set_adapter(f"expert_{i}")
        out = out + w[i] * logits_of(peft_model, ids)
    return out


def _single(d, trained, base_dir, lora_r=R):
    peft_model, gate = trained
    d.mkdir(parents=True)
    sd = {
        f"foundation_model.{k}": v.detach().clone().contiguous()
        for k, v in peft_model.state_dict().items()
    }
    sd.update({f"router.gate.{k}": v.detach().clone() for k, v in gate.state_dict().items()})
    save_file(sd, d / "model.safetensors")
    (d / "config.json").write_text(
        json.dumps(
            {
                "base_model_name_or_path": str(base_dir),
                "num_experts": E,
                "lora_r": lora_r,
                "lora_alpha": ALPHA,
                "lora_dropout": 0.05,
                "model_type": "dylora-moe",
                "saved_at": "2025-01-01 12:00:00",
            }
        )
    )


def _separated(d, trained, base_config, as_dirs):
    peft_model, gate = trained
    d.mkdir(parents=True)
    cfg = {
        **base_config.to_dict(),
        "model_type": "dylora-moe",
        "_dylora_num_experts": E,
        "_dylora_lora_r": R,
        "_dylora_lora_alpha": ALPHA,
        "_dylora_lora_dropout": 0.05,
        "_dylora_trained": True,
        "_dylora_saved_at": "2025-01-01 12:00:00",
        "_dylora_format": "peft_separated",
    }
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "peft_adapters").mkdir()
    if as_dirs:
        peft_model.save_pretrained(d / "peft_adapters")
    else:
        for i in range(E):
            sd = {
                k: v.detach().clone()
                for k, v in peft_model.named_parameters()
                if f".expert_{i}." in k
            }
            torch.save(sd, d / "peft_adapters" / f"expert_{i}.pt")
    save_file(
        {f"gate.{k}": v.detach().clone() for k, v in gate.state_dict().items()},
        d / "router.safetensors",
    )


def _legacy(d, trained):
    peft_model, gate = trained
    peft_model.save_pretrained(d)
    (d / "dylo_moe_state").mkdir()
    torch.save(
        {
            "gate_state_dict": gate.state_dict(),
            "expert_maturity": [1.0, 0.5],
            "num_experts": E,
            "input_size": HIDDEN,
            "top_k": 1,
            "temperature": 2.0,
        },
        d / "dylo_moe_state" / "router.pt",
    )


def test_single_file_layout_in_wandb_artifact(tmp_path, trained, base_dir, base_model):
    _single(tmp_path / "art" / "best_model", trained, base_dir)
    loaded = load_checkpoint(tmp_path / "art")
    assert loaded.format == "dylora-moe" and isinstance(loaded.model, DyLoRAMoEModel)
    torch.testing.assert_close(logits_of(loaded.model), reference(trained), atol=1e-5, rtol=1e-5)
    r = loaded.report
    assert len(r.key_report("experts").matched) == E * 8 and not r.key_report("experts").missing
    assert sorted(r.key_report("router").matched) == ["router.gate.bias", "router.gate.weight"]
    assert r.probe.changed, "the seed-002 failure: the trained model silently is the base model"
    assert not torch.allclose(logits_of(loaded.model), logits_of(base_model))


@pytest.mark.parametrize("as_dirs", [False, True])
def test_peft_separated_layouts(tmp_path, trained, base_dir, base_model, as_dirs):
    _separated(tmp_path / "m", trained, base_model.config, as_dirs)
    loaded = load_checkpoint(tmp_path / "m", base_model=base_dir)
    assert loaded.report.hyperparameters["layout"] == "peft_separated"
    torch.testing.assert_close(logits_of(loaded.model), reference(trained), atol=1e-5, rtol=1e-5)
    assert loaded.report.probe.changed


def test_legacy_router_and_dense_routing(tmp_path, trained, base_dir):
    _legacy(tmp_path / "legacy", trained)
    loaded = load_checkpoint(tmp_path / "legacy", base_model=base_dir, routing="dense")
    assert loaded.report.hyperparameters["router_temperature"] == 2.0
    torch.testing.assert_close(
        logits_of(loaded.model), reference(trained, dense=True), atol=1e-5, rtol=1e-5
    )


def test_pinned_expert_merges_into_plain_model(tmp_path, trained, base_dir):
    _single(tmp_path / "m", trained, base_dir)
    loaded = load_checkpoint(tmp_path / "m", expert=1)
    assert type(loaded.model) is LlamaForCausalLM
    trained[0].set_adapter("expert_1")
    torch.testing.assert_close(logits_of(loaded.model), logits_of(trained[0]), atol=1e-5, rtol=1e-5)


def test_rank_disagreeing_with_config(tmp_path, trained, base_dir):
    _single(tmp_path / "m", trained, base_dir, lora_r=16)
    with pytest.raises(RankMismatchError, match="lora_r=16"):
        load_checkpoint(tmp_path / "m")


def test_missing_base_model(tmp_path, trained, base_dir):
    _single(tmp_path / "m", trained, tmp_path / "nowhere")
    with pytest.raises(MissingBaseModelError, match="--base-model"):
        load_checkpoint(tmp_path / "m")
