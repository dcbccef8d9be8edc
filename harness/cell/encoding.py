"""From the data config to encoded samples a PrefixLM can batch (the sources are in data/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from harness.contracts.config import DataConfig
from harness.contracts.sizes import style_size
from harness.data.jsonl import DataError, Record, load_image, read_records
from harness.models.prefix_lm import EncodedBatch, PrefixLM


@dataclass
class Splits:
    train: list[Record]
    val: list[Record]
    test: list[Record]
    test_is_val: bool = False
    """The reported split is the validation split (one JSONL file given for both, or the same
    file twice): its score is not held out from checkpoint selection."""
    images: dict[str, np.ndarray] = field(default_factory=dict)
    """Decoded images by split name (row i = record i; captcha: cached beside the split); a split
    without an entry has each record's image file read when it is encoded."""

    def encode(self, model: PrefixLM) -> tuple[EncodedSet, EncodedSet, EncodedSet]:
        """The train, val and test sets encoded for ``model`` (test is val's set when it is the
        validation split)."""
        train = EncodedSet(self.train, model, self.images.get("train"))
        val = EncodedSet(self.val, model, self.images.get("val"))
        test = (
            val if self.test is self.val else EncodedSet(self.test, model, self.images.get("test"))
        )
        return train, val, test


def load_splits(cfg: DataConfig) -> Splits:
    """Read (and for kind=captcha, generate once and cache) the train/val/test records."""
    if cfg.kind == "captcha":
        from harness.data.captcha import ensure_captcha_split, split_pixels

        images: dict[str, np.ndarray] = {}

        def split(name: str, count: int, style: str = cfg.style) -> list[Record]:
            # Another test style is drawn at its own default size.
            size = (cfg.image_width, cfg.image_height) if style == cfg.style else (None, None)
            width, height = style_size(style, *size)
            path = ensure_captcha_split(
                cfg.cache_dir,
                name,
                count,
                seed=0,
                digits=cfg.digits,
                width=width,
                height=height,
                question=cfg.question,
                style=style,
            )
            records = read_records(path)
            images[name] = split_pixels(path, records, width, height)
            return records

        # The data seed is fixed (0) so that every cell of a matrix, whatever its training
        # seed, is scored on the same held-out samples (paired comparisons in reports).
        return Splits(
            split("train", cfg.train_count),
            split("val", cfg.val_count),
            split("test", cfg.test_count, cfg.test_style or cfg.style),
            images=images,
        )
    train = read_records(cfg.train_path)
    val_path, test_path = cfg.val_path or cfg.test_path, cfg.test_path or cfg.val_path
    same = Path(val_path).resolve() == Path(test_path).resolve()
    val = read_records(val_path)
    return Splits(train, val, val if same else read_records(test_path), test_is_val=same)


class EncodedSet:
    """Token ids and preprocessed pixels of a list of records, computed once.

    ``images`` (optional): the records' images already decoded, uint8 ``[N, H, W]`` grayscale,
    row i = record i; without it each record's image file is read.
    """

    def __init__(
        self, records: list[Record], model: PrefixLM, images: np.ndarray | None = None
    ) -> None:
        if not records:
            raise DataError("no records to encode")
        if images is not None and len(images) != len(records):
            raise DataError(f"{len(images)} decoded images for {len(records)} records")
        self.records = records
        self.model = model
        prompts: dict[str, list[int]] = {}  # most datasets ask few distinct questions
        for r in records:
            if r.question not in prompts:
                prompts[r.question] = model.prompt_ids(r.question)
        self.prompts = [prompts[r.question] for r in records]
        self.answers = [model.answer_ids(r.answer) for r in records]
        self.pixels: torch.Tensor | list | None = None
        if model.image_tokens:
            missing = [r for r in records if r.image_path is None]
            if missing:
                raise DataError(
                    f"{missing[0].source or missing[0].id}: record has no image, but model "
                    f"{type(model).__name__} needs one (use a text model for text-only data)"
                )
            if getattr(model, "per_sample_images", False):
                self._encode_per_sample(records, images)
            elif images is not None:
                self.pixels = model.preprocess_arrays(images)
            else:
                self.pixels = torch.stack(
                    [model.preprocess(load_image(r.image_path, r.source or r.id)) for r in records]
                )

    def _encode_per_sample(self, records: list[Record], images: np.ndarray | None) -> None:
        """Each record's prompt and image inputs from its own image (a model whose prompt
        depends on the image size: hf-vlm); ``self.pixels`` is then a list, one per record."""
        from PIL import Image

        self.prompts, self.pixels = [], []
        for i, r in enumerate(records):
            if images is not None:
                image = Image.fromarray(images[i])
            else:
                image = load_image(r.image_path, r.source or r.id)
            prompt, inputs = self.model.encode_sample(r.question, image)
            self.prompts.append(prompt)
            self.pixels.append(inputs)

    def __len__(self) -> int:
        return len(self.records)

    def batch(
        self, idx: list[int], with_answers: bool = True, left_pad: bool = False
    ) -> EncodedBatch:
        if isinstance(self.pixels, list):
            pix = [self.pixels[i] for i in idx]
        else:
            pix = self.pixels[idx] if self.pixels is not None else None
        return self.model.collate(
            [self.prompts[i] for i in idx],
            [self.answers[i] for i in idx] if with_answers else None,
            pix,
            left_pad=left_pad,
        )


def infinite_batches(n: int, batch_size: int, seed: int):
    """Full shuffled index batches forever (a ragged tail is dropped), reshuffled each epoch from
    a seeded generator. ``batch_size`` must not exceed ``n``."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=gen).tolist()
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]
