"""Bad input gives the documented error naming the file; the inspect CLI end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from loader_fixtures import tiny_model
from safetensors.torch import save_file

from loaders import (
    AmbiguousCheckpointError,
    CheckpointError,
    CorruptCheckpointError,
    MissingBaseModelError,
    NothingLoadableError,
    RemoteCodeError,
    load_checkpoint,
)

ROOT = Path(__file__).parents[2]


@pytest.fixture()
def weights(tmp_path) -> Path:
    f = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_model(1).state_dict().items()}, f)
    return f


def test_truncated_safetensors(tmp_path, weights, base_dir):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CorruptCheckpointError, match=r"cut.safetensors.*truncated"):
        load_checkpoint(cut, base_model=base_dir)


def test_garbage_safetensors(tmp_path, base_dir):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"\x00\x01not a safetensors file at all")
    with pytest.raises(CorruptCheckpointError, match=r"garbage.safetensors"):
        load_checkpoint(bad, base_model=base_dir)


def test_nothing_loadable(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(NothingLoadableError, match=r"nothing loadable.*notes.txt"):
        load_checkpoint(tmp_path / "empty")
    with pytest.raises(NothingLoadableError, match="does not exist"):
        load_checkpoint(tmp_path / "missing")


def test_ambiguous_directory(tmp_path, weights):
    (tmp_path / "other.safetensors").write_bytes(weights.read_bytes())
    with pytest.raises(AmbiguousCheckpointError, match="pass the file you want"):
        load_checkpoint(tmp_path)


def test_missing_base_model(weights):
    with pytest.raises(MissingBaseModelError, match=r"weights.safetensors.*needs a base model"):
        load_checkpoint(weights)
    with pytest.raises(MissingBaseModelError, match="not found locally"):
        load_checkpoint(weights, base_model="no-such-org/no-such-model")


def test_remote_code_is_off_by_default(tmp_path):
    d = tmp_path / "custom"
    tiny_model(1).save_pretrained(d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(
        model_type="my-custom-arch", auto_map={"AutoModelForCausalLM": "modeling_custom.CustomLM"}
    )
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "modeling_custom.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(RemoteCodeError, match="allow_remote_code=True"):
        load_checkpoint(d)


def test_every_error_is_a_checkpoint_error(weights):
    with pytest.raises(CheckpointError):
        load_checkpoint(weights)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "loaders", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_inspect_json_and_load(tmp_path, base_dir):
    g = torch.Generator().manual_seed(0)
    f = tmp_path / "moondream_lora_finetune.safetensors"
    save_file(
        {
            "model.layers.0.self_attn.q_proj.lora_A": torch.randn(16, 2, generator=g),
            "model.layers.0.self_attn.q_proj.lora_B": torch.randn(2, 16, generator=g),
            "region.coord_features": torch.randn(1, 8, generator=g),
        },
        f,
    )
    res = _cli("inspect", str(f), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["format"] == "lora-file" and info["details"]["ranks_from_shapes"] == [2]
    res = _cli("inspect", str(f), "--base-model", str(base_dir), "--lora-alpha", "4", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["probe"]["changed"] is True and report["extra_tensors"] == [
        "region.coord_features"
    ]
    assert report["hyperparameters"]["lora_rank"] == 2


def test_cli_error_is_one_line_and_exit_2(tmp_path):
    res = _cli("inspect", str(tmp_path / "nope"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "does not exist" in lines[0]
