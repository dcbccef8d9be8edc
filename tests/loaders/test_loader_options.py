"""Bad options and inconsistent checkpoints are a ``CheckpointError`` naming the files, raised
before any base model is loaded; the CLI prints them as one line."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from loader_fixtures import tiny_model
from safetensors.torch import save_file
from test_loader_trainable_rows import rows, tiny_space, write_run

import loaders.base
import loaders.formats.dylora_moe
from loaders import (
    InvalidOptionError,
    ShapeMismatchError,
    TokenSpaceError,
    TokenSpaceHashError,
    load_checkpoint,
)
from loaders.token_space import token_space_hash

ROOT = Path(__file__).parents[2]


@pytest.fixture()
def no_base_load(monkeypatch):
    """Fail the test if any format asks for its base model."""

    def refuse(*args, **kwargs):
        raise AssertionError("the base model was loaded before the options were checked")

    for module in (loaders.base, loaders.formats.dylora_moe):
        monkeypatch.setattr(module, "load_base", refuse)


@pytest.fixture()
def hf_dir(tmp_path) -> Path:
    d = tmp_path / "hf"
    tiny_model(1).save_pretrained(d)
    return d


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ({"expert": -1}, "expert=-1"),
        ({"expert": "0"}, "expert='0'"),
        ({"routing": "top2"}, "routing='top2'"),
        ({"temperature": 0.0}, "temperature=0.0"),
        ({"lora_alpha": math.nan}, "lora_alpha=nan"),
        ({"lora_rank": 0}, "lora_rank=0"),
        ({"device": "not-a-device"}, "device='not-a-device'"),
        ({"dtype": "float99"}, "unknown dtype 'float99'"),
        ({"expert": 0}, "applies to dylora-moe checkpoints; this is hf-full"),
    ],
)
def test_a_bad_option_is_refused_before_the_base_model(hf_dir, no_base_load, option, named):
    with pytest.raises(InvalidOptionError, match=re.escape(named)):
        load_checkpoint(hf_dir, base_model=hf_dir, **option)


def test_an_expert_out_of_range_is_refused_before_the_base_model(tmp_path, no_base_load):
    """Two experts (seed 002's single-file layout, LoRA on q_proj); expert=7 is refused from the
    checkpoint's own files."""
    d = tmp_path / "moe"
    d.mkdir()
    g = torch.Generator().manual_seed(0)
    key = (
        "foundation_model.base_model.model.model.layers.0.self_attn.q_proj.lora_{}.expert_{}.weight"
    )
    tensors = {key.format(ab, i): torch.randn(4, 16, generator=g) for ab in "AB" for i in (0, 1)}
    tensors |= {"router.gate.weight": torch.randn(2, 16), "router.gate.bias": torch.zeros(2)}
    save_file(tensors, d / "model.safetensors")
    config = {"base_model_name_or_path": "/nowhere", "num_experts": 2, "lora_r": 4}
    (d / "config.json").write_text(json.dumps({**config, "model_type": "dylora-moe"}))
    with pytest.raises(InvalidOptionError, match=r"moe: expert=7 but the checkpoint has 2 experts"):
        load_checkpoint(d, expert=7)


def test_config_json_that_disagrees_with_the_weights(hf_dir):
    config = json.loads((hf_dir / "config.json").read_text())
    config.update(hidden_size=32, intermediate_size=64)
    (hf_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ShapeMismatchError, match=r"hf: the weights do not fit .*config.json"):
        load_checkpoint(hf_dir)
    done = subprocess.run(
        [sys.executable, "-m", "loaders", "inspect", str(hf_dir), "--load"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "is [64, 16] in the weights, [64, 32] in config.json" in lines[0]


def test_parent_and_checkpoint_token_spaces_that_differ_are_refused(tmp_path, base_dir):
    """The seed's layout keeps a token_space.json per run and one per checkpoint: when they
    differ, neither is trusted and both files are named."""
    ckpt = write_run(tmp_path, tiny_space(), rows())
    other = tiny_space()
    other["special_tokens"]["<|pad_mm|>"] = 71
    (ckpt / "token_space.json").write_text(json.dumps(other))
    with pytest.raises(TokenSpaceError) as caught:
        load_checkpoint(ckpt, base_model=base_dir)
    message = str(caught.value)
    assert str(ckpt / "token_space.json") in message
    assert str(tmp_path / "token_space.json") in message and "differs" in message
    (ckpt / "token_space.json").write_text(json.dumps(tiny_space()))  # the same space: fine
    assert load_checkpoint(ckpt, base_model=base_dir).report.hyperparameters["hash_checked"]


def test_a_published_hash_beside_either_file_must_match(tmp_path, base_dir):
    """token_space.json in the checkpoint, token_space.sha256 (of another space) in the run."""
    ckpt = write_run(tmp_path, tiny_space(), rows())
    (tmp_path / "token_space.json").unlink()
    (ckpt / "token_space.json").write_text(json.dumps(tiny_space()))
    other = tiny_space()
    other["version"] = "uti_v2"
    (tmp_path / "token_space.sha256").write_text(f"{token_space_hash(other)}  token_space.json\n")
    with pytest.raises(TokenSpaceHashError) as caught:
        load_checkpoint(ckpt, base_model=base_dir)
    message = str(caught.value)
    assert str(ckpt / "token_space.json") in message
    assert str(tmp_path / "token_space.sha256") in message


@pytest.mark.parametrize(
    "damage",
    [
        {"ranges": {"TEXT": [0, 63]}},
        {"text_vocab_size": [64]},
        {"vocab_size_total": "96"},
        {"special_tokens": ["<|pad_mm|>"]},
        {"special_tokens": {"<|pad_mm|>": "70"}},
    ],
)
def test_a_token_space_with_values_of_the_wrong_type_is_a_token_space_error(
    tmp_path, base_dir, damage
):
    ckpt = write_run(tmp_path, {**tiny_space(), **damage}, rows())
    with pytest.raises(TokenSpaceError, match="invalid token space"):
        load_checkpoint(ckpt, base_model=base_dir)
