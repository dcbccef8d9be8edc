"""`benchmark` end to end in comparison mode on a checkpoint of every loader format, made in the
test: base and trained scored on the same samples, the format detected and proven changed, and an
unchanged "trained" model flagged in the report and the exit status."""

from __future__ import annotations

import json

import pytest
import torch

from harness.benchmark.cli import main
from harness.benchmark.errors import EXIT_UNCHANGED
from tests.benchmark.builders import (
    SEED000_ALPHA,
    dylora_trained,
    write_dylora_single,
    write_peft_adapter,
    write_seed000_file,
    write_trainable_rows,
)
from tests.cell_helpers import tiny_cell

FAST = ["--max_samples", "3", "--max_new_tokens", "3", "--quiet"]


def _run(tmp_path, *args: str) -> tuple[int, dict, str]:
    out = tmp_path / "out" / "report.md"
    rc = main([*FAST, *args, "--output", str(out)])
    return rc, json.loads(out.with_suffix(".json").read_text()), out.read_text()


def _checks(res: dict, report: str, fmt: str, n: int = 3) -> None:
    assert res["loader"]["format"] == fmt
    assert f"Detected format: **{fmt}**" in report
    assert res["base"]["evaluated"] and res["metrics"]["base"] is not None
    assert res["proof"]["unchanged"] is False
    assert res["proof"]["loader_probe"]["changed"] is True
    assert res["comparison"]["n"] == n and len(res["samples"]) == n
    assert all(s["base"]["id"] == s["trained"]["id"] == s["id"] for s in res["samples"])
    assert "UNCHANGED" not in report
    for phase in ("load_s", "probe_s", "evaluation_s", "report_s", "total_s"):
        assert res["timings"][phase] >= 0


def test_peft_adapter_qa(tmp_path, base_dir, data_dir):
    write_peft_adapter(base_dir, tmp_path / "adapter")
    rc, res, report = _run(
        tmp_path, "--trained_model", str(tmp_path / "adapter"), "--data", str(data_dir / "qa.jsonl")
    )
    assert rc == 0
    _checks(res, report, "peft-adapter")
    assert res["base"]["origin"] == "recorded in the checkpoint"
    assert res["task"] == "qa" and res["data"]["selection"].startswith("the first 3 of 6")
    assert res["proof"]["data_probe"]["changed"] is True


def test_seed000_lora_file_perplexity(tmp_path, base_dir, data_dir):
    f = write_seed000_file(tmp_path / "moondream_lora_best_step_100.safetensors", base_dir)
    rc, res, report = _run(
        tmp_path,
        "--trained_model",
        str(f),
        "--base_model",
        str(base_dir),
        "--lora_alpha",
        str(SEED000_ALPHA),
        "--data",
        str(data_dir / "text.txt"),
    )
    assert rc == 0
    _checks(res, report, "lora-file")
    assert res["task"] == "perplexity" and res["base"]["origin"] == "--base_model"
    assert res["comparison"]["test"].startswith("sign test")
    assert any("region" in n for n in res["loader"]["notes"] + res["loader"]["warnings"])


def test_dylora_moe_artifact_folder_qa(tmp_path, base_dir, data_dir):
    art = tmp_path / "artifacts" / "best-dylora-model-full:v12"
    write_dylora_single(art / "best_model", dylora_trained(base_dir), base_dir)
    rc, res, report = _run(
        tmp_path, "--wandb_artifact", str(art), "--data", str(data_dir / "qa.jsonl")
    )
    assert rc == 0
    _checks(res, report, "dylora-moe")
    assert res["loader"]["path"].endswith("best_model")
    assert res["trained"]["origin"].startswith("local artifact folder")


def test_trainable_rows_with_a_seeded_sample(tmp_path, base_dir, data_dir):
    ckpt = write_trainable_rows(tmp_path / "run")
    rc, res, report = _run(
        tmp_path,
        "--trained_model",
        str(ckpt),
        "--base_model",
        str(base_dir),
        "--data",
        str(data_dir / "text.txt"),
        "--sample_seed",
        "1",
        "--max_samples",
        "2",
    )
    assert rc == 0
    _checks(res, report, "trainable-rows", n=2)
    assert "random.Random(1).sample" in res["data"]["selection"]


@pytest.fixture(scope="module")
def captcha(tmp_path_factory):
    from harness.data.captcha import generate_split

    return generate_split(tmp_path_factory.mktemp("captcha"), "test", 4)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_harness_tiny_vlm_checkpoints_vision_qa(tmp_path, captcha, method):
    from harness.cell.checkpoints import save_checkpoint
    from harness.cell.trainable import setup_trainable
    from harness.contracts.config import parse_cell_config
    from harness.models import build_model

    # two layers: with one, text positions cannot see how the prefix attended (mode-independent)
    cfg = parse_cell_config(tiny_cell(tmp_path / "cap", train__method=method, model__num_layers=2))
    torch.manual_seed(cfg.seed)
    model, _ = build_model(cfg.model)
    setup_trainable(model, cfg)
    with torch.no_grad():  # "training": every trainable tensor moves
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    cell = tmp_path / "runs" / "m" / "cell"  # a run store's layout: the cell's config beside ckpt/
    f = save_checkpoint(model, cfg, cell / "ckpt" / "best.safetensors", step=1, metric=0.0)
    (cell / "config.yaml").write_text("attention: {mode: prefix_bidirectional, impl: sdpa}\n")
    rc, res, report = _run(tmp_path, "--trained_model", str(f), "--data", str(captcha))
    assert rc == 0
    _checks(res, report, "state-dict" if method == "full" else "lora-file")
    assert res["base"]["spec"] == "harness:tiny-vlm"
    assert res["metrics"]["trained"]["path"].startswith("harness.cell.evaluate")
    assert res["trained"]["tokenizer"] == "the model's own"
    att = res["options"]["attention"]
    assert (att["mode"], att["applied"]) == ("prefix_bidirectional", True)
    assert att["origin"] == f"the cell's {cell / 'config.yaml'}"
    assert "Attention: prefix_bidirectional (sdpa)" in report
    rc, causal, _ = _run(
        tmp_path, "--trained_model", str(f), "--data", str(captcha), "--attention", "causal"
    )
    assert causal["options"]["attention"]["origin"] == "--attention"
    diff = res["proof"]["data_probe"]["max_abs_diff"]
    assert causal["proof"]["data_probe"]["max_abs_diff"] != pytest.approx(diff)  # the mode is used
    # --no_compare: the trained model alone, its base still rebuilt from the file's own config
    rc, alone, _ = _run(tmp_path, "--trained_model", str(f), "--data", str(captcha), "--no_compare")
    assert rc == 0 and not alone["base"]["evaluated"] and alone["metrics"]["base"] is None
    assert alone["metrics"]["trained"] == res["metrics"]["trained"]


def _zero_init_adapter(base_dir, out):
    """A PEFT adapter straight from init (B = 0): loading it changes nothing."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    model = get_peft_model(
        LlamaForCausalLM.from_pretrained(base_dir), LoraConfig(r=4, target_modules=["q_proj"])
    )
    model.save_pretrained(out)
    cfg = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(
        json.dumps({**cfg, "base_model_name_or_path": str(base_dir)})
    )
    return out


def test_unchanged_model_is_flagged_with_its_own_exit_status(tmp_path, base_dir, data_dir):
    ad = _zero_init_adapter(base_dir, tmp_path / "adapter")
    args = ["--trained_model", str(ad), "--data", str(data_dir / "qa.jsonl")]
    rc, res, report = _run(tmp_path, *args)
    assert rc == EXIT_UNCHANGED == res["exit_status"]
    assert res["proof"]["unchanged"] is True
    assert res["proof"]["loader_probe"]["max_abs_diff"] <= res["proof"]["atol"]
    first = report.split("## Result")[0]
    assert "UNCHANGED" in first and "exit status 3" in first
    rc, res, report = _run(tmp_path, *args, "--allow_unchanged")
    assert rc == 0 and res["proof"]["unchanged"] is True
    assert "allowed by --allow_unchanged" in report.split("## Result")[0]


def test_hf_vlm_base_with_a_peft_adapter_vision_qa(tmp_path, captcha):
    from peft import LoraConfig, get_peft_model
    from transformers import LlavaForConditionalGeneration

    from tests.test_hf_vlm import _save_tiny_llava

    base = _save_tiny_llava(tmp_path / "llava")
    torch.manual_seed(5)
    vlm = LlavaForConditionalGeneration.from_pretrained(base)
    cfg = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(vlm, cfg).save_pretrained(tmp_path / "adapter")
    ad_cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    ad_cfg["base_model_name_or_path"] = str(base)
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps(ad_cfg))
    rc, res, report = _run(
        tmp_path, "--trained_model", str(tmp_path / "adapter"), "--data", str(captcha)
    )
    assert rc == 0
    _checks(res, report, "peft-adapter")
    assert res["metrics"]["trained"]["path"].startswith("harness.cell.evaluate")
    assert res["trained"]["tokenizer"] == "the model's own"
