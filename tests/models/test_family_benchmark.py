"""Every family end to end: ``run_matrix.py`` trains full and LoRA cells on the tiny folder, the
checkpoints (harness file and PEFT folder) reload with ``loaders.load_checkpoint`` with identical
logits, and the real ``benchmark`` CLI scores each against the base folder.

The benchmark's trained side must be the model the cell trained: its test loss, token accuracy and
exact match equal those the cell itself recorded on the same test split (which needs the
checkpoint's every trained tensor, the projector included, and the cell's attention mode and
prompt format, seed for the full cell and chat_template for the LoRA one where the processor has
a chat template, read from its config.yaml). Nothing is asserted about the model improving. One family runs in the
default suite, the others with ``-m slow``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from harness.models.families import FAMILIES
from harness.models.hf_vlm import HFVisionLM
from harness.models.tiny import write_tiny
from loaders import load_checkpoint
from tests.models.helpers import load, vlm_cell

REPO = Path(__file__).resolve().parents[2]
MODE = "image_bidirectional"
DEFAULT_FAMILY = "llava"
FAMILY_PARAMS = [
    pytest.param(f.name, marks=() if f.name == DEFAULT_FAMILY else pytest.mark.slow)
    for f in FAMILIES
]


def _matrix(tmp_path: Path, base: Path, lora_prompts: str) -> Path:
    matrix = {
        "name": "fam_bench",
        "workers": 1,
        "base": vlm_cell(
            tmp_path / "data",
            base,
            steps=4,
            **{
                "seed": 0,
                "attention": {"mode": MODE, "impl": "sdpa"},
                "train.lr": 1.0e-2,
                "checkpoint": {"save": "final", "peft_dir": True},
                "runtime.device": "cpu",
            },
        ),
        "matrix": {  # paired: the LoRA cell prompts with the model's own chat template if it has one
            "variant": [
                {"train.method": "full", "data.prompt_format": "seed"},
                {"train.method": "lora", "data.prompt_format": lora_prompts},
            ]
        },
    }
    path = tmp_path / "fam_bench.yaml"
    path.write_text(yaml.safe_dump(matrix))
    return path


def _train(tmp_path: Path, base: Path) -> dict[str, Path]:
    """The cell folder of each method, trained by ``run_matrix.py`` in its own processes."""
    store = tmp_path / "runs"
    # PaliGemma's processor, like the real one, has no chat template
    lora_prompts = "chat_template" if load(base).processor.chat_template else "seed"
    matrix = _matrix(tmp_path, base, lora_prompts)
    cmd = [sys.executable, "run_matrix.py", str(matrix), "--store", str(store)]
    proc = subprocess.run([*cmd, "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    cells = {}
    for config in (store / "fam_bench").glob("*/config.yaml"):
        cells[yaml.safe_load(config.read_text())["train"]["method"]] = config.parent
    assert sorted(cells) == ["full", "lora"]
    for cell in cells.values():
        assert json.loads((cell / "summary.json").read_text())["outcome"] == "completed"
    return cells


def _logits(base: Path, checkpoint: Path | None) -> torch.Tensor:
    """The image-bidirectional logits of ``checkpoint`` loaded onto a fresh base (None: the base)
    for two samples with images of two aspect ratios."""
    model = load(base)
    if checkpoint is not None:
        loaded = load_checkpoint(checkpoint, base_model=model.decoder, probe=True)
        assert loaded.report.probe.changed is True
        model = HFVisionLM(loaded.model, model.processor, model.path)
    model.eval()
    model.set_attention(MODE, "sdpa")
    enc = [
        model.encode_sample("Read it", Image.new("RGB", size, (20, 120, 210)))
        for size in ((96, 32), (40, 80))
    ]
    batch = model.collate([e[0] for e in enc], None, [e[1] for e in enc])
    with torch.no_grad():
        return model(batch).logits


def _benchmark(tmp_path: Path, trained: Path, base: Path, data: Path) -> tuple[dict, str]:
    out = tmp_path / "bench" / f"{trained.parent.parent.name}-{trained.name}.md"
    cmd = [
        sys.executable,
        "-m",
        "harness.benchmark",
        "--trained_model",
        str(trained),
        "--base_model",
        str(base),
        "--data",
        str(data),
        "--max_new_tokens",
        "2",
        "--no_cache",
        "--quiet",
        "--output",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(out.with_suffix(".json").read_text()), out.read_text()


def _check_report(res: dict, report: str, fmt: str, cell: Path, base: Path) -> None:
    assert res["loader"]["format"] == fmt and f"Detected format: **{fmt}**" in report
    assert res["base"]["evaluated"] and res["base"]["spec"] == str(base)
    assert res["proof"]["unchanged"] is False and res["proof"]["loader_probe"]["changed"]
    assert res["comparison"]["n"] == 4 and len(res["samples"]) == 4
    assert all(s["base"]["id"] == s["trained"]["id"] == s["id"] for s in res["samples"])
    att = res["options"]["attention"]
    assert (att["mode"], att["applied"]) == (MODE, True)
    assert att["origin"] == f"the cell's {cell / 'config.yaml'}"
    assert f"Attention: {MODE} (sdpa)" in report
    prompt_format = yaml.safe_load((cell / "config.yaml").read_text())["data"]["prompt_format"]
    assert res["options"]["prompt_format"] == prompt_format
    assert f"prompt_format={prompt_format}" in report
    assert not [w for w in res["loader"]["warnings"] if "no pair" in w]
    # The trained side is the model the cell trained: the same scores on the same test split.
    own = json.loads((cell / "summary.json").read_text())["metrics"]
    scored = res["metrics"]["trained"]
    assert scored["n"] == own["n"] == 4
    assert scored["loss"] == pytest.approx(own["loss"], rel=1e-5, abs=1e-6)
    assert scored["token_accuracy"] == pytest.approx(own["token_accuracy"])
    assert scored["exact_match"] == pytest.approx(own["exact_match"])
    assert res["metrics"]["base"]["loss"] != pytest.approx(scored["loss"], rel=1e-4)


@pytest.mark.parametrize("family", FAMILY_PARAMS)
def test_checkpoints_reload_and_benchmark_against_the_base(tmp_path, family):
    base = write_tiny(family, tmp_path / "models" / family)
    cells = _train(tmp_path, base)
    full = cells["full"] / "ckpt" / "final.safetensors"
    lora_file = cells["lora"] / "ckpt" / "final.safetensors"
    peft_dir = cells["lora"] / "ckpt" / "peft"
    assert json.loads((peft_dir / "adapter_config.json").read_text())["modules_to_save"]

    before = _logits(base, None)
    from_file, from_peft = _logits(base, lora_file), _logits(base, peft_dir)
    torch.testing.assert_close(from_peft, from_file, atol=1e-5, rtol=1e-5)
    assert float((from_file - before).abs().max()) > 1e-4
    assert float((_logits(base, full) - before).abs().max()) > 1e-4

    data = next((tmp_path / "data").glob("test-*/test.jsonl"))
    for trained, fmt, cell in (
        (full, "state-dict", cells["full"]),
        (lora_file, "lora-file", cells["lora"]),
        (peft_dir, "peft-adapter", cells["lora"]),
    ):
        res, report = _benchmark(tmp_path, trained, base, data)
        _check_report(res, report, fmt, cell, base)
