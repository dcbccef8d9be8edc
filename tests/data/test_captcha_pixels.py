"""A cached captcha split keeps its images decoded once (``{split}.pixels.npy``), and encoding
from that array gives exactly the tensors that decoding every PNG gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.cell.encoding import EncodedSet, load_splits
from harness.contracts.config import parse_cell_config
from harness.data.captcha import ensure_captcha_split, generate_split, pixels_path, split_pixels
from harness.data.jsonl import read_records
from harness.models import build_model


def _decoded(jsonl: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(r.image_path)) for r in read_records(jsonl)])


def test_a_cached_split_is_written_with_its_decoded_images(tmp_path: Path) -> None:
    jsonl = ensure_captcha_split(tmp_path, "train", 5, width=64, height=24)
    path = pixels_path(jsonl)
    assert path.name == "train.pixels.npy"
    stored = np.load(path, allow_pickle=False)
    assert stored.dtype == np.uint8 and stored.shape == (5, 24, 64)
    assert np.array_equal(stored, _decoded(jsonl))
    assert np.array_equal(split_pixels(jsonl, read_records(jsonl), 64, 24), stored)


def test_a_split_without_the_array_is_decoded_once(tmp_path: Path) -> None:
    jsonl = generate_split(tmp_path, "val", 4)  # as an older version cached it: PNGs only
    assert not pixels_path(jsonl).exists()
    records = read_records(jsonl)
    images = split_pixels(jsonl, records, 96, 32)
    assert np.array_equal(images, _decoded(jsonl))
    mtime = pixels_path(jsonl).stat().st_mtime_ns
    assert np.array_equal(split_pixels(jsonl, records, 96, 32), images)
    assert pixels_path(jsonl).stat().st_mtime_ns == mtime  # read, not rebuilt
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((3, 32, 96), dtype=np.uint8),  # wrong count
        np.zeros((4, 32, 96), dtype=np.float32),  # wrong dtype
        np.array([{"x": 1}] * 4, dtype=object),  # would need a pickle: never loaded
    ],
    ids=["count", "dtype", "object"],
)
def test_a_stale_or_unsafe_array_is_rebuilt_from_the_pngs(tmp_path: Path, bad) -> None:
    jsonl = generate_split(tmp_path, "val", 4)
    np.save(pixels_path(jsonl), bad, allow_pickle=True)
    images = split_pixels(jsonl, read_records(jsonl), 96, 32)
    assert np.array_equal(images, _decoded(jsonl))
    assert np.array_equal(np.load(pixels_path(jsonl), allow_pickle=False), images)


def test_truncated_array_is_rebuilt(tmp_path: Path) -> None:
    jsonl = ensure_captcha_split(tmp_path, "val", 4)
    path = pixels_path(jsonl)
    path.write_bytes(path.read_bytes()[:100])
    assert np.array_equal(split_pixels(jsonl, read_records(jsonl), 96, 32), _decoded(jsonl))


def test_a_cache_that_cannot_be_written_is_skipped_not_fatal(tmp_path: Path, monkeypatch) -> None:
    """A full disk while the array is written (a short write, as numpy reports it): the split and
    its images are still there, the PNGs are decoded, no temporary file is left."""

    def full_disk(fh, *args, **kwargs):
        fh.write(b"\x93NUMPY")
        raise OSError("196608 requested and 32640 written")

    monkeypatch.setattr(np, "save", full_disk)
    jsonl = ensure_captcha_split(tmp_path, "val", 4)
    assert not pixels_path(jsonl).exists()
    assert np.array_equal(split_pixels(jsonl, read_records(jsonl), 96, 32), _decoded(jsonl))
    assert not pixels_path(jsonl).exists()
    assert not [p for p in jsonl.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("input_size", [(32, 96), (16, 48)], ids=["same-size", "resized"])
def test_encoding_from_the_array_equals_decoding_every_png(tmp_path: Path, input_size) -> None:
    h, w = input_size
    cfg = parse_cell_config(
        {
            "data": {"cache_dir": str(tmp_path), "train_count": 6, "val_count": 3, "test_count": 3},
            "model": {"input_height": h, "input_width": w, "image_tokens": 8},
        }
    )
    splits = load_splits(cfg.data)
    assert set(splits.images) == {"train", "val", "test"}
    model, _ = build_model(cfg.model)
    fast = splits.encode(model)
    for name, enc in zip(("train", "val", "test"), fast, strict=True):
        slow = EncodedSet(getattr(splits, name), model)  # every PNG decoded
        assert enc.pixels.shape == (len(slow), 1, h, w)
        assert torch.equal(enc.pixels, slow.pixels)
        assert enc.prompts == slow.prompts and enc.answers == slow.answers
