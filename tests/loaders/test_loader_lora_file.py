"""lora-file (seed 000): hand-written LoRA pairs + region head in one safetensors, no metadata."""

from __future__ import annotations

import pytest
import torch
from loader_fixtures import HIDDEN, logits_of
from safetensors.torch import save_file
from torch import nn
from transformers import LlamaForCausalLM

from loaders import (
    MissingAlphaError,
    RankMismatchError,
    UnmatchedKeysError,
    inspect_checkpoint,
    load_checkpoint,
)

RANK, ALPHA = 4, 8.0
TARGETS = (
    "model.layers.0.self_attn.q_proj",
    "model.layers.0.self_attn.v_proj",
    "model.layers.0.mlp.down_proj",
)


def seed000_pairs(base: nn.Module, peft_layout: bool = False) -> dict[str, torch.Tensor]:
    """A [in, r] / B [r, out] in bf16 as seed 000's trainer saved them (or PEFT's orientation)."""
    g = torch.Generator().manual_seed(7)
    out = {}
    for name in TARGETS:
        lin = base.get_submodule(name)
        a = (torch.randn(lin.in_features, RANK, generator=g) * 0.3).bfloat16()
        b = (torch.randn(RANK, lin.out_features, generator=g) * 0.3).bfloat16()
        if peft_layout:
            out[f"base_model.model.{name}.lora_A.weight"] = a.t().contiguous()
            out[f"base_model.model.{name}.lora_B.weight"] = b.t().contiguous()
        else:
            out[f"{name}.lora_A"], out[f"{name}.lora_B"] = a, b
    return out


def region_tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(9)
    return {
        "region.coord_features": torch.randn(1, 8, generator=g).bfloat16(),
        "region.coord_encoder.weight": torch.randn(HIDDEN, 8, generator=g).bfloat16(),
        "region.coord_encoder.bias": torch.randn(HIDDEN, generator=g).bfloat16(),
    }


class RegionHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.coord_features = nn.Parameter(torch.zeros(1, 8))
        self.coord_encoder = nn.Linear(8, HIDDEN)


def seed000_reference(base: nn.Module, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits with seed 000's own forward: base(x) + x @ A @ B * alpha / r (eval: no dropout)."""
    for name in TARGETS:
        lin = base.get_submodule(name)
        a, b = tensors[f"{name}.lora_A"].float(), tensors[f"{name}.lora_B"].float()
        orig = lin.forward
        lin.forward = lambda x, orig=orig, a=a, b=b: orig(x) + (x @ a @ b) * (ALPHA / RANK)
    return logits_of(base)


@pytest.fixture()
def seed_file(tmp_path, base_model):
    tensors = {**seed000_pairs(base_model), **region_tensors()}
    f = tmp_path / "moondream_lora_best_step_100.safetensors"
    save_file(tensors, f)
    return f, tensors


def test_seed000_layout_matches_seed_forward(seed_file, base_dir, base_model):
    f, tensors = seed_file
    loaded = load_checkpoint(f, base_model=base_dir, lora_alpha=ALPHA)
    assert loaded.format == "lora-file"
    hp = loaded.report.hyperparameters
    assert (
        hp["lora_rank"] == RANK and hp["lora_alpha"] == ALPHA and "seed000" in hp["lora_layout"][0]
    )
    torch.testing.assert_close(
        logits_of(loaded.model), seed000_reference(base_model, tensors), atol=1e-4, rtol=1e-4
    )
    assert len(loaded.report.key_report("lora").matched) == 2 * len(TARGETS)
    assert sorted(loaded.extra_tensors) == sorted(region_tensors())
    assert any("region" in n and "extra_tensors" in n for n in loaded.report.notes)
    assert loaded.report.probe.changed


def test_peft_orientation_and_prefix(tmp_path, base_dir, base_model):
    seed = seed000_pairs(base_model)
    f = tmp_path / "peft_layout.safetensors"
    save_file({**seed000_pairs(base_model, peft_layout=True), **region_tensors()}, f)
    loaded = load_checkpoint(f, base_model=base_dir, lora_alpha=ALPHA)
    assert "peft" in loaded.report.hyperparameters["lora_layout"][0]
    torch.testing.assert_close(
        logits_of(loaded.model), seed000_reference(base_model, seed), atol=1e-4, rtol=1e-4
    )


def test_alpha_missing_is_a_clear_error(seed_file, base_dir):
    f, _ = seed_file
    with pytest.raises(
        MissingAlphaError, match=r"moondream_lora_best_step_100.*rank \[4\].*lora_alpha"
    ):
        load_checkpoint(f, base_model=base_dir)


def test_region_head_loaded_into_model_that_has_it(seed_file, base_model):
    f, tensors = seed_file
    base_model.region = RegionHead()
    loaded = load_checkpoint(f, base_model=base_model, lora_alpha=ALPHA)
    assert loaded.extra_tensors == {}
    torch.testing.assert_close(
        loaded.model.region.coord_encoder.weight.data,
        tensors["region.coord_encoder.weight"].float(),
    )
    assert len(loaded.report.key_report("extra").matched) == 3


def test_lora_only_file_is_loaded_with_a_note(tmp_path, base_dir, base_model):
    f = tmp_path / "old_trainer.safetensors"
    save_file(seed000_pairs(base_model), f)
    loaded = load_checkpoint(f, base_model=base_dir, lora_alpha=ALPHA)
    assert any("LoRA tensors only" in w for w in loaded.report.warnings)


def test_wrong_rank(seed_file, tmp_path, base_dir, base_model):
    f, _ = seed_file
    with pytest.raises(RankMismatchError, match="expected"):
        load_checkpoint(f, base_model=base_dir, lora_alpha=ALPHA, lora_rank=8)
    pairs = seed000_pairs(base_model)
    name = TARGETS[0]
    pairs[f"{name}.lora_B"] = pairs[f"{name}.lora_B"][:3]
    bad = tmp_path / "bad_rank.safetensors"
    save_file(pairs, bad)
    with pytest.raises(RankMismatchError, match=r"bad_rank.safetensors.*inconsistent ranks"):
        load_checkpoint(bad, base_model=base_dir, lora_alpha=ALPHA)


def test_pairs_for_unknown_modules_are_refused(tmp_path, base_dir, base_model):
    pairs = seed000_pairs(base_model)
    pairs["text.blocks.0.attn.qkv.lora_A"] = torch.zeros(2048, RANK)
    pairs["text.blocks.0.attn.qkv.lora_B"] = torch.zeros(RANK, 6144)
    f = tmp_path / "moondream_on_llama.safetensors"
    save_file(pairs, f)
    with pytest.raises(UnmatchedKeysError, match="match no module"):
        load_checkpoint(f, base_model=base_dir, lora_alpha=ALPHA)


def test_inspect_reads_the_header_only(seed_file):
    info = inspect_checkpoint(seed_file[0])
    assert info["format"] == "lora-file"
    d = info["details"]
    assert d["ranks_from_shapes"] == [RANK] and d["extra_prefixes"] == ["region"]
    assert "not recorded" in d["lora_alpha"]


def test_base_model_module_is_used_in_place(seed_file):
    base = LlamaForCausalLM(
        LlamaForCausalLM.config_class(
            vocab_size=64,
            hidden_size=HIDDEN,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
        )
    )
    loaded = load_checkpoint(seed_file[0], base_model=base, lora_alpha=ALPHA)
    assert loaded.model is base
    assert loaded.report.base_model == "<LlamaForCausalLM instance>"


class _MoondreamText(torch.nn.Module):
    """The official moondream's module names: text.blocks.{i}.attn.qkv / .proj, mlp.fc1 / fc2."""

    def __init__(self, d: int = 8) -> None:
        super().__init__()
        block = torch.nn.Module()
        block.attn = torch.nn.Module()
        block.attn.qkv, block.attn.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.text = torch.nn.Module()
        self.text.blocks = torch.nn.ModuleList([block])


def test_official_moondream_pt_with_bare_a_b_leaves(tmp_path):
    torch.manual_seed(7)
    base = _MoondreamText()
    w_qkv, w_proj = (
        base.text.blocks[0].attn.qkv.weight.clone(),
        base.text.blocks[0].attn.proj.weight.clone(),
    )
    a1, b1 = torch.randn(2, 8), torch.randn(24, 2)  # A [r, in], B [out, r]
    a2, b2 = torch.randn(2, 8), torch.randn(8, 2)
    f = tmp_path / "moondream_official_lora.pt"
    old = "text_model.transformer.h.0.mixer"
    leaves = {
        f"{old}.Wqkv.A": a1,
        f"{old}.Wqkv.B": b1,
        f"{old}.out_proj.A": a2,
        f"{old}.out_proj.B": b2,
    }
    torch.save(leaves, f)
    loaded = load_checkpoint(f, base_model=base, probe=False)
    assert loaded.format == "lora-file" and loaded.report.hyperparameters["lora_rank"] == 2
    torch.testing.assert_close(base.text.blocks[0].attn.qkv.weight, w_qkv + b1 @ a1)  # unscaled
    torch.testing.assert_close(base.text.blocks[0].attn.proj.weight, w_proj + b2 @ a2)
    assert any("official moondream" in n for n in loaded.report.notes)
