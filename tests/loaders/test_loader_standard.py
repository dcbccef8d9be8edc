"""hf-full, state-dict and peft-adapter: each loads and matches logits computed independently."""

from __future__ import annotations

import json

import pytest
import torch
from loader_fixtures import logits_of, tiny_model
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaForCausalLM

from loaders import load_checkpoint


@pytest.fixture(scope="module")
def trained():
    return tiny_model(seed=1)


def test_hf_full_directory(tmp_path, trained):
    trained.save_pretrained(tmp_path / "m")
    loaded = load_checkpoint(tmp_path / "m")
    assert loaded.format == "hf-full"
    assert not loaded.model.training
    torch.testing.assert_close(logits_of(loaded.model), logits_of(trained))
    assert loaded.report.key_report("model").matched
    probe = loaded.report.probe
    assert not probe.before_available and probe.changed is None and "base_model=" in probe.note


def test_hf_full_sharded_and_wandb_artifact(tmp_path, trained, base_dir):
    art = tmp_path / "artifacts" / "model:v3"
    trained.save_pretrained(art / "best_model", max_shard_size="5KB")
    assert (art / "best_model" / "model.safetensors.index.json").is_file()
    loaded = load_checkpoint(art, base_model=base_dir)
    assert loaded.report.path.endswith("best_model")
    assert any("best_model" in n for n in loaded.report.notes)
    torch.testing.assert_close(logits_of(loaded.model), logits_of(trained))
    assert loaded.report.probe.changed  # compared with the base model given


def test_hf_full_pytorch_bin(tmp_path, trained):
    d = tmp_path / "bin"
    trained.config.save_pretrained(d)
    torch.save(trained.state_dict(), d / "pytorch_model.bin")
    loaded = load_checkpoint(d)
    assert loaded.format == "hf-full"
    torch.testing.assert_close(logits_of(loaded.model), logits_of(trained))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_state_dict_file_onto_base(tmp_path, trained, base_dir, base_model, suffix):
    sd = {k: v.contiguous() for k, v in trained.state_dict().items()}
    f = tmp_path / f"weights{suffix}"
    save_file(sd, f) if suffix == ".safetensors" else torch.save({"state_dict": sd}, f)
    loaded = load_checkpoint(f, base_model=base_dir)
    assert loaded.format == "state-dict"
    torch.testing.assert_close(logits_of(loaded.model), logits_of(trained))
    p = loaded.report.probe
    assert p.changed and p.max_abs_diff > 0
    ids = torch.tensor([p.input_ids])
    # the probe compares the last position's logits (logits_to_keep=1)
    expected = (logits_of(base_model, ids) - logits_of(trained, ids))[:, -1].abs().max().item()
    assert p.max_abs_diff == pytest.approx(expected, rel=1e-4)
    assert not loaded.report.key_report("model").missing


def test_state_dict_partial_warns_and_strict_fails(tmp_path, trained, base_dir):
    from loaders import MissingKeysError

    sd = {k: v for k, v in trained.state_dict().items() if "lm_head" not in k}
    f = tmp_path / "partial.safetensors"
    save_file(sd, f)
    loaded = load_checkpoint(f, base_model=base_dir)
    assert loaded.report.key_report("model").missing == ["lm_head.weight"]
    assert any("lm_head.weight" in w for w in loaded.report.warnings)
    with pytest.raises(MissingKeysError, match=r"partial.safetensors"):
        load_checkpoint(f, base_model=base_dir, strict=True)


def _peft_adapter(base_dir, out):
    torch.manual_seed(3)
    base = LlamaForCausalLM.from_pretrained(base_dir)
    cfg = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    model = get_peft_model(base, cfg)
    model.save_pretrained(out)
    cfg_path = out / "adapter_config.json"
    data = json.loads(cfg_path.read_text())
    data["base_model_name_or_path"] = str(base_dir)
    cfg_path.write_text(json.dumps(data))
    return model


@pytest.mark.parametrize("merge", [False, True])
def test_peft_adapter(tmp_path, base_dir, merge):
    _peft_adapter(base_dir, tmp_path / "ad")
    ref = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base_dir), tmp_path / "ad")
    loaded = load_checkpoint(tmp_path / "ad", merge=merge)
    assert loaded.format == "peft-adapter"
    assert loaded.report.hyperparameters["r"] == 4
    assert len(loaded.report.key_report("adapter").matched) == 4
    assert not loaded.report.key_report("adapter").missing
    assert loaded.report.probe.changed
    assert isinstance(loaded.model, LlamaForCausalLM) == merge
    torch.testing.assert_close(logits_of(loaded.model), logits_of(ref), atol=1e-5, rtol=1e-5)


def test_hf_full_strict_fails_on_missing_keys(tmp_path, trained):
    from loaders import MissingKeysError

    d = tmp_path / "partial-hf"
    trained.config.save_pretrained(d)
    sd = {k: v.contiguous() for k, v in trained.state_dict().items() if k != "lm_head.weight"}
    save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
    assert load_checkpoint(d).report.key_report("model").missing == ["lm_head.weight"]
    with pytest.raises(MissingKeysError, match=r"partial-hf.*lm_head"):
        load_checkpoint(d, strict=True)


def test_dtype_applied_before_the_probe(base_dir):
    """The base loaded as its own checkpoint in bf16: the probe compares like with like."""
    loaded = load_checkpoint(base_dir, base_model=base_dir, dtype="bfloat16")
    assert loaded.report.dtype == "bfloat16"
    assert loaded.report.probe.changed is False and loaded.report.probe.max_abs_diff == 0.0
