"""A bad file is named for what is wrong with it; an error that is not about the file propagates.

Truncated or garbled files say corrupt, a missing one says it cannot be opened, a PEFT adapter
that does not fit its base says so; a ``MemoryError`` or a bug in a library is not re-labelled.
"""

from __future__ import annotations

import json

import peft
import pytest
import safetensors.torch
import torch
from loader_fixtures import tiny_model
from peft import LoraConfig, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel

import loaders.io
from loaders import (
    CheckpointError,
    CorruptCheckpointError,
    RankMismatchError,
    ShapeMismatchError,
    UnmatchedKeysError,
    UnsafePickleError,
    load_checkpoint,
)
from loaders.io import load_pickle, load_safetensors, read_header, read_json


@pytest.fixture()
def tensors_pt(tmp_path):
    f = tmp_path / "weights.pt"
    torch.save({"w": torch.arange(4096.0)}, f)
    return f


@pytest.fixture()
def tensors_st(tmp_path):
    f = tmp_path / "weights.safetensors"
    safetensors.torch.save_file({"w": torch.arange(4096.0)}, f)
    return f


def test_a_truncated_torch_file_is_corrupt_not_unsafe(tmp_path, tensors_pt, base_dir):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tensors_pt.read_bytes()[: tensors_pt.stat().st_size // 2])
    with pytest.raises(CorruptCheckpointError, match=r"cut.pt: not a readable torch file") as e:
        load_checkpoint(cut, base_model=base_dir)
    assert not isinstance(e.value, UnsafePickleError)


def test_a_garbled_pickle_is_corrupt_not_refused_as_code(tmp_path):
    bad = tmp_path / "garbled.pt"
    bad.write_bytes(b"not a torch file at all")
    with pytest.raises(CorruptCheckpointError, match=r"Unsupported operand.*truncated or corrupt"):
        load_pickle(bad)
    with pytest.raises(CorruptCheckpointError) as e:
        load_pickle(bad)
    assert not isinstance(e.value, UnsafePickleError)


@pytest.mark.parametrize("read", [read_header, load_safetensors, load_pickle, read_json])
def test_a_missing_file_cannot_be_opened_and_is_not_called_corrupt(tmp_path, read):
    with pytest.raises(CheckpointError, match=r"cannot be opened \(FileNotFoundError") as e:
        read(tmp_path / "gone.safetensors")
    assert not isinstance(e.value, CorruptCheckpointError)


@pytest.mark.parametrize(
    ("where", "name", "read", "fixture"),
    [
        (loaders.io, "safe_open", read_header, "tensors_st"),
        (loaders.io, "load_file", load_safetensors, "tensors_st"),
        (torch, "load", load_pickle, "tensors_pt"),
    ],
)
@pytest.mark.parametrize("error", [MemoryError, TypeError])
def test_errors_that_are_not_about_the_file_propagate(
    request, monkeypatch, where, name, read, fixture, error
):
    path = request.getfixturevalue(fixture)

    def fails(*args, **kwargs):
        raise error("not the file's fault")

    monkeypatch.setattr(where, name, fails)
    with pytest.raises(error, match="not the file's fault"):
        read(path)


def _adapter(out, base, **config) -> None:
    torch.manual_seed(3)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], **config)
    get_peft_model(base, cfg).save_pretrained(out)


def _edit_config(adapter, **values) -> None:
    path = adapter / "adapter_config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | values))


def test_an_adapter_for_another_base_says_base_adapter_mismatch(tmp_path):
    _adapter(tmp_path / "ad", tiny_model(0))
    wider = tiny_model(0, hidden_size=32)
    with pytest.raises(ShapeMismatchError, match=r"base/adapter mismatch.*q_proj.*\[4, 16\].*32"):
        load_checkpoint(tmp_path / "ad", base_model=wider)


def test_an_adapter_whose_targets_the_base_lacks_says_base_adapter_mismatch(tmp_path):
    _adapter(tmp_path / "ad", tiny_model(0))
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64))
    with pytest.raises(UnmatchedKeysError, match=r"base/adapter mismatch.*not found in the base"):
        load_checkpoint(tmp_path / "ad", base_model=gpt2)


def test_an_adapter_config_whose_rank_disagrees_with_its_weights(tmp_path):
    _adapter(tmp_path / "ad", tiny_model(0))
    _edit_config(tmp_path / "ad", r=8)
    with pytest.raises(
        RankMismatchError, match=r"r=8 but the saved lora_A weights have rank \[4\]"
    ):
        load_checkpoint(tmp_path / "ad", base_model=tiny_model(0))


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"peft_type": "NO_SUCH_TYPE"}, "not a valid PEFT adapter config"),
        ({"r": "four"}, "r='four'"),
    ],
)
def test_an_invalid_adapter_config_is_named(tmp_path, values, says):
    _adapter(tmp_path / "ad", tiny_model(0))
    _edit_config(tmp_path / "ad", **values)
    with pytest.raises(CorruptCheckpointError, match=rf"adapter_config.json: {says}"):
        load_checkpoint(tmp_path / "ad", base_model=tiny_model(0))


@pytest.mark.parametrize("error", [RuntimeError, ValueError, MemoryError])
def test_a_peft_failure_that_is_not_a_mismatch_propagates(tmp_path, monkeypatch, error):
    _adapter(tmp_path / "ad", tiny_model(0))

    def bug(*args, **kwargs):
        raise error("a bug inside PEFT")

    monkeypatch.setattr(peft.PeftModel, "from_pretrained", bug)
    with pytest.raises(error, match="a bug inside PEFT"):
        load_checkpoint(tmp_path / "ad", base_model=tiny_model(0))
