"""An hf-vlm cell's checkpoint reloads with loaders.load_checkpoint onto its base folder."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from harness.cell.run import run_cell
from harness.contracts.config import parse_cell_config
from loaders import load_checkpoint
from tests.models.helpers import load, vlm_cell


@pytest.mark.parametrize("family", ["llava", "qwen2_vl", "gemma3"])
def test_full_checkpoint_reloads_with_the_trained_logits(tiny_dirs, tmp_path, family):
    cfg = vlm_cell(
        tmp_path / "data",
        tiny_dirs[family],
        **{"attention.mode": "image_bidirectional", "checkpoint.save": "final"},
    )
    out = tmp_path / "cell"
    assert run_cell(parse_cell_config(cfg), out) == 0
    ckpt = out / "ckpt" / "final.safetensors"
    base = load(tiny_dirs[family])
    loaded = load_checkpoint(ckpt, base_model=base.decoder, probe=True)
    assert loaded.report.probe.changed is True
    # The same tensors put in by hand (the cell's model held the VLM as `decoder.`).
    by_hand = load(tiny_dirs[family])
    tensors = {k.removeprefix("decoder."): v for k, v in load_file(str(ckpt)).items()}
    assert not by_hand.decoder.load_state_dict(tensors, strict=False).unexpected_keys
    enc = by_hand.encode_sample("Read it", Image.new("RGB", (96, 32), (5, 90, 200)))
    batch = by_hand.collate([enc[0]], None, [enc[1]])
    base.set_attention("image_bidirectional", "sdpa")
    by_hand.set_attention("image_bidirectional", "sdpa")
    with torch.no_grad():
        torch.testing.assert_close(base(batch).logits, by_hand(batch).logits)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "completed"


def test_lora_checkpoint_holds_the_projector_and_reloads(tiny_dirs, tmp_path):
    cfg = vlm_cell(
        tmp_path / "data",
        tiny_dirs["qwen2_vl"],
        **{"train.method": "lora", "train.lr": 1e-2, "checkpoint.save": "final"},
    )
    out = tmp_path / "cell"
    assert run_cell(parse_cell_config(cfg), out) == 0
    ckpt = out / "ckpt" / "final.safetensors"
    keys = list(load_file(str(ckpt)))
    assert any(".visual.merger." in k for k in keys)  # extra_trainable: [projector]
    assert not any(".visual.blocks." in k for k in keys)  # the frozen tower is not saved
    assert all("language_model" in k for k in keys if ".lora_" in k)
    base = load(tiny_dirs["qwen2_vl"])
    loaded = load_checkpoint(ckpt, base_model=base.decoder, probe=True)
    assert loaded.report.probe.changed is True
    tensors = load_file(str(ckpt))
    merger = [k for k in tensors if ".visual.merger." in k]
    state = loaded.model.state_dict()
    for key in merger:
        name = key[key.index("model.visual.merger.") :]
        torch.testing.assert_close(state[name], tensors[key])
