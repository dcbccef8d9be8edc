"""trainable-rows (seed 003): token space validated and hash-checked, rows patched, pickles safe."""

from __future__ import annotations

import json
import pathlib
from pathlib import Path

import pytest
import torch
from loader_fixtures import HIDDEN, VOCAB, logits_of
from transformers import LlamaForCausalLM

from loaders import (
    TokenSpaceError,
    TokenSpaceHashError,
    UnsafePickleError,
    VocabSizeError,
    load_checkpoint,
)
from loaders.token_space import load_token_space, token_space_hash, validate

REAL = Path(__file__).parent / "fixtures" / "real_token_space"
"""A copy of the real token_space.json and its published token_space.sha256 (seed 003's run)."""
TOTAL = 96


def tiny_space() -> dict:
    ranges = {"TEXT": (0, 63), "SPECIAL": (64, 71), "IMAGE": (72, 87), "AUDIO_CB0": (88, 95)}
    return {
        "version": "uti_v1",
        "base_text_model": "tiny",
        "text_vocab_size": VOCAB,
        "special_tokens": {"<|img_start|>": 66, "<|pad_mm|>": 70},
        "ranges": {k: {"start": s, "end": e, "size": e - s + 1} for k, (s, e) in ranges.items()},
        "vocab_size_total": TOTAL,
    }


def rows(start=VOCAB, end=TOTAL, hidden=HIDDEN) -> dict:
    g = torch.Generator().manual_seed(5)
    return {
        "row_start": start,
        "row_end": end,
        "base_llm": "tiny",
        "dtype": "float32",
        "embeddings": torch.randn(end - start, hidden, generator=g),
        "lm_head": torch.randn(end - start, hidden, generator=g),
    }


def write_run(root: Path, space: dict, saved: dict, sha: str | None = None) -> Path:
    ckpt = root / "checkpoint_7000"
    ckpt.mkdir(parents=True)
    torch.save(saved, ckpt / "trainable_rows.pt")
    (ckpt / "trainable_rows.json").write_text(
        json.dumps(
            {
                "row_start": saved["row_start"],
                "row_end": saved["row_end"],
                "base_llm": "tiny",
                "has_lm_head": True,
            }
        )
    )
    (root / "token_space.json").write_text(json.dumps(space, indent=2))
    (root / "token_space.sha256").write_text(
        f"{sha or token_space_hash(space)}  token_space.json\n"
    )
    return ckpt


def test_real_token_space_and_published_hash():
    space, facts = load_token_space(REAL / "token_space.json")
    assert facts["hash_checked"] is True
    assert facts["token_space_sha256"] == (REAL / "token_space.sha256").read_text().split()[0]
    assert space["vocab_size_total"] == 164021 and validate(space) == []


def test_rows_are_patched_and_match_reference(tmp_path, base_dir):
    saved = rows()
    ckpt = write_run(tmp_path, tiny_space(), saved)
    loaded = load_checkpoint(ckpt, base_model=base_dir)
    assert loaded.format == "trainable-rows"
    ref = LlamaForCausalLM.from_pretrained(base_dir)
    ref.resize_token_embeddings(TOTAL)
    with torch.no_grad():
        ref.get_input_embeddings().weight[VOCAB:] = saved["embeddings"]
        ref.get_output_embeddings().weight[VOCAB:] = saved["lm_head"]
    ids = torch.tensor([[1, 70, 66, 80, 90, 95, 3]])
    torch.testing.assert_close(logits_of(loaded.model, ids), logits_of(ref, ids))
    hp = loaded.report.hyperparameters
    assert (
        hp["hash_checked"] and hp["pad_token_id"] == 70 and loaded.model.config.pad_token_id == 70
    )
    assert loaded.report.probe.changed


def test_hash_mismatch_is_refused(tmp_path, base_dir):
    ckpt = write_run(tmp_path, tiny_space(), rows(), sha="0" * 64)
    with pytest.raises(TokenSpaceHashError, match=r"token_space.json.*does not match"):
        load_checkpoint(ckpt, base_model=base_dir)


def test_range_not_matching_token_space_is_refused(tmp_path, base_dir):
    ckpt = write_run(tmp_path, tiny_space(), rows(end=90))
    with pytest.raises(TokenSpaceError, match=r"saved rows 64..90 do not match.*64..96"):
        load_checkpoint(ckpt, base_model=base_dir)


def test_wrong_vocabulary_or_hidden_size(tmp_path, base_dir):
    ckpt = write_run(tmp_path, tiny_space(), rows(hidden=8))
    with pytest.raises(VocabSizeError, match=r"trainable_rows.pt.*expected \[32, 16\]"):
        load_checkpoint(ckpt, base_model=base_dir)


def test_invalid_token_space_lists_every_problem(tmp_path, base_dir):
    space = tiny_space()
    space["ranges"]["IMAGE"]["start"] = 70
    space["special_tokens"]["<|bad|>"] = 5
    ckpt = write_run(tmp_path, space, rows())
    with pytest.raises(TokenSpaceError) as e:
        load_checkpoint(ckpt, base_model=base_dir)
    assert "overlap" in str(e.value) and "<|bad|>" in str(e.value) and "size" in str(e.value)


class Evil:
    """A pickle that would create a file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_planted_pickle_never_executes(tmp_path, base_dir):
    marker = tmp_path / "pwned"
    saved = {**rows(), "payload": Evil(marker)}
    ckpt = write_run(tmp_path / "run", tiny_space(), saved)
    with pytest.raises(UnsafePickleError, match=r"trainable_rows.pt.*refused to unpickle"):
        load_checkpoint(ckpt, base_model=base_dir)
    assert not marker.exists()
    bad = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2), "x": Evil(marker)}, bad)
    with pytest.raises(UnsafePickleError):
        load_checkpoint(bad, base_model=base_dir)
    assert not marker.exists()
