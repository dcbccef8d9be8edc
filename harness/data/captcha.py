"""Synthetic digit captchas: a deterministic, offline stand-in for the seed's captcha set.

Styles (``data.style``): ``harness``, this module's clean glyphs (96x32); ``imagecaptcha``, the
seed's kind, by the PyPI `captcha` package (200x200; ``harness.data.imagecaptcha``).

Each split is written as PNGs under ``images/`` plus ``{split}.jsonl`` in the seed's format
(``{"image": "images/captcha_train_00000.png", "question": ..., "answer": "907565"}``, image
paths relative to the JSONL file). Image ``i`` of a split depends only on (seed, split, i) and
the rendering parameters, so a smaller count yields a prefix of a larger one. A cached split
(``ensure_captcha_split``) also keeps its images decoded once, as one uint8 array
(``{split}.pixels.npy``), so that the cells of a matrix do not each decode thousands of PNGs.

    python -m harness.data.captcha --output-dir data/captcha --split train --count 6000
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from harness.contracts.errors import (
    DISK_FULL_ERRNOS,
    InputError,
    Parser,
    os_reason,
    run_command,
    writable_dir,
)
from harness.contracts.sizes import CAPTCHA_STYLES, style_size
from harness.data.imagecaptcha import draw_imagecaptcha
from harness.data.jsonl import DataError, Record, load_image

DEFAULT_QUESTION = "What is the text in this captcha image?"
IMAGES_DIR = "images"
PIXELS_SUFFIX = ".pixels.npy"
"""Beside ``{split}.jsonl``: the split's images as uint8 ``[count, height, width]``, row i = line i."""
# Bump when rendering changes so that cached splits from an older generator are not reused.
GENERATOR_VERSION = 1
# The seed's splits: 6,000 train / 2,000 val / 2,000 test.
DEFAULT_COUNTS = {"train": 6000, "val": 2000, "test": 2000}
_SPLIT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def split_rng_key(seed: int, split: str) -> int:
    """A stable 64-bit key for (seed, split); unlike ``hash()`` it is the same in every process."""
    digest = hashlib.sha256(f"captcha/{seed}/{split}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise RuntimeError("Pillow was built without FreeType; the captcha generator needs it")
    return font


def render_captcha(text: str, rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Draw ``text`` as a grayscale captcha with per-character jitter, lines and noise."""
    bg = int(rng.integers(195, 256))
    img = Image.new("L", (width, height), bg)
    margin = width * 0.04
    slot = (width - 2 * margin) / len(text)
    base_size = min(height * 0.72, slot * 1.5)
    box = max(8, round(base_size * 1.6))
    for i, ch in enumerate(text):
        size = max(6, round(base_size * rng.uniform(0.85, 1.15)))
        glyph = Image.new("L", (box, box), 0)
        ImageDraw.Draw(glyph).text((box / 2, box / 2), ch, font=_font(size), fill=255, anchor="mm")
        glyph = glyph.rotate(rng.uniform(-18, 18), resample=Image.Resampling.BILINEAR)
        cx = margin + slot * (i + 0.5) + rng.uniform(-0.15, 0.15) * slot
        cy = height / 2 + rng.uniform(-0.1, 0.1) * height
        ink = int(rng.integers(0, 100))
        img.paste(ink, (round(cx - box / 2), round(cy - box / 2)), glyph)

    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 3))):  # distractor lines crossing the text
        y0, y1 = rng.uniform(0.2, 0.8, size=2) * height
        ink = int(rng.integers(0, 120))
        draw.line([(0, y0), (width, y1)], fill=ink, width=int(rng.integers(1, 3)))

    pixels = np.asarray(img, dtype=np.float32)
    pixels = pixels + rng.normal(0.0, rng.uniform(5.0, 15.0), size=pixels.shape)
    speckle = rng.random(pixels.shape) < 0.02
    pixels[speckle] = rng.uniform(0, 255, size=int(speckle.sum()))
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), mode="L")


MAX_SIDE = 4096
"""Largest image width or height (pixels): a typo of a few zeros must not exhaust memory."""
MAX_COUNT = 10_000_000
"""Most images in one split."""


def _validate(
    split: str, count: int, digits: int, width: int, height: int, style: str = "harness"
) -> None:
    if style not in CAPTCHA_STYLES:
        raise ValueError(f"style {style!r} must be one of {', '.join(CAPTCHA_STYLES)}")
    if not _SPLIT_RE.match(split):
        raise ValueError(f"split {split!r} must be letters, digits, '_', '.' or '-'")
    if not 0 < count <= MAX_COUNT:
        raise ValueError(f"count must be between 1 and {MAX_COUNT:,}, got {count}")
    if digits <= 0:
        raise ValueError(f"digits must be positive, got {digits}")
    if width < 4 * digits or height < 8:
        raise ValueError(f"image {width}x{height} is too small for {digits} digits")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ValueError(f"image {width}x{height} is larger than {MAX_SIDE}x{MAX_SIDE}")


def draw(
    style: str, seed: int, split: str, index: int, digits: int, width: int, height: int
) -> tuple[str, Image.Image]:
    """Image ``index`` of a split in ``style``: its answer and the grayscale picture."""
    if style == "imagecaptcha":
        return draw_imagecaptcha(seed, split, index, digits, width, height)
    rng = np.random.default_rng([split_rng_key(seed, split), index])
    answer = "".join(str(d) for d in rng.integers(0, 10, size=digits))
    return answer, render_captcha(answer, rng, width, height)


def _write_jsonl(path: Path, rows: Sequence[dict[str, str]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    os.replace(tmp, path)


def generate_split(
    output_dir: str | Path,
    split: str,
    count: int,
    *,
    seed: int = 0,
    digits: int = 6,
    width: int | None = None,
    height: int | None = None,
    question: str = DEFAULT_QUESTION,
    subset: int | None = None,
    pixels: bool = False,
    style: str = "harness",
) -> Path:
    """Write ``count`` captchas and ``{split}.jsonl`` (plus ``{split}_subset_{N}.jsonl``, and with
    ``pixels`` the decoded images as ``{split}.pixels.npy``); a size left out is the style's."""
    width, height = style_size(style, width, height)
    _validate(split, count, digits, width, height, style)
    if subset is not None and not 0 < subset <= count:
        raise ValueError(f"subset must be between 1 and count ({count}), got {subset}")
    out = Path(output_dir)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    index_width = max(5, len(str(count - 1)))
    rows = []
    images = np.empty((count, height, width), dtype=np.uint8) if pixels else None
    for i in range(count):
        answer, image = draw(style, seed, split, i, digits, width, height)
        rel = f"{IMAGES_DIR}/captcha_{split}_{i:0{index_width}d}.png"
        image.save(out / rel, format="PNG")
        if images is not None:
            images[i] = np.asarray(image)
        row = {"image": rel, "question": question, "answer": answer}
        if style != "harness":  # ids of their own: reports pair samples only within a style
            row = {"id": f"{style}-{split}-{i}", **row}
        rows.append(row)
    jsonl = out / f"{split}.jsonl"
    if images is not None:
        _write_pixels(pixels_path(jsonl), images)
    _write_jsonl(jsonl, rows)
    if subset is not None:
        _write_jsonl(out / f"{split}_subset_{subset}.jsonl", rows[:subset])
    return jsonl


def pixels_path(jsonl: str | Path) -> Path:
    """Where a split's decoded images live: ``{split}.pixels.npy`` beside ``{split}.jsonl``."""
    jsonl = Path(jsonl)
    return jsonl.with_name(jsonl.stem + PIXELS_SUFFIX)


def _write_pixels(path: Path, images: np.ndarray) -> bool:
    """Atomic: concurrent writers each write their own temporary file and rename it into place.

    Only a cache: where it cannot be written (a full disk, a read-only data folder) nothing is
    left behind, False is returned and readers decode the PNGs instead."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "xb") as fh:
            np.save(fh, images, allow_pickle=False)
        os.replace(tmp, path)
        return True
    except OSError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def split_pixels(
    jsonl: str | Path, records: Sequence[Record], width: int, height: int
) -> np.ndarray:
    """The images of a generated split (its JSONL's ``records``) as uint8 ``[count, height,
    width]``, row i = record i.

    Read from ``{split}.pixels.npy``; a split without one (written by ``generate_split`` without
    ``pixels``, or by an older version) has its PNGs decoded once and the file written atomically,
    so concurrent callers are safe and later ones only read (where it cannot be written, the
    images are still returned: the next caller decodes them again).
    """
    path, shape = pixels_path(jsonl), (len(records), height, width)
    try:
        images = np.load(path, allow_pickle=False)
        if images.dtype == np.uint8 and images.shape == shape:
            return images
    except (OSError, ValueError):
        pass  # absent or unreadable: rebuilt from the PNGs below
    images = np.empty(shape, dtype=np.uint8)
    for i, rec in enumerate(records):
        image = load_image(rec.image_path, rec.source or rec.id).convert("L")
        if image.size != (width, height):
            raise DataError(
                f"{rec.source or rec.id}: image is {image.size[0]}x{image.size[1]}, expected "
                f"{width}x{height}; delete {Path(jsonl).parent} to generate the split again"
            )
        images[i] = np.asarray(image)
    _write_pixels(path, images)
    return images


def cache_dir_name(
    split: str,
    count: int,
    seed: int,
    digits: int,
    width: int,
    height: int,
    question: str,
    style: str = "harness",
) -> str:
    """Directory name that encodes every generation parameter (the hash covers the question);
    the harness style's names are those from before styles existed, so its caches stay valid."""
    params: dict[str, object] = {
        "split": split,
        "count": count,
        "seed": seed,
        "digits": digits,
        "width": width,
        "height": height,
        "question": question,
        "version": GENERATOR_VERSION,
    }
    prefix = ""
    if style != "harness":
        params["style"] = style
        prefix = f"{style}-"
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    return f"{prefix}{split}-n{count}-s{seed}-d{digits}-{width}x{height}-{digest}"


def ensure_captcha_split(
    cache_dir: str | Path,
    split: str,
    count: int,
    *,
    seed: int = 0,
    digits: int = 6,
    width: int | None = None,
    height: int | None = None,
    question: str = DEFAULT_QUESTION,
    style: str = "harness",
) -> Path:
    """Return the JSONL of a cached split, generating it first if absent (with its decoded
    images, ``split_pixels``).

    Generation goes to a temporary directory that is renamed into place, so concurrent callers
    never see a half-written split; a caller that loses the rename race uses the winner's files.
    """
    width, height = style_size(style, width, height)
    _validate(split, count, digits, width, height, style)
    root = Path(cache_dir)
    final = root / cache_dir_name(split, count, seed, digits, width, height, question, style)
    jsonl = final / f"{split}.jsonl"
    if jsonl.is_file():
        return jsonl
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
    try:
        generate_split(
            tmp,
            split,
            count,
            seed=seed,
            digits=digits,
            width=width,
            height=height,
            question=question,
            pixels=True,
            style=style,
        )
        try:
            os.rename(tmp, final)
        except OSError:
            if not jsonl.is_file():  # not a lost race: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return jsonl


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``captcha-data`` command line, mirroring the seed's ``prepare_captcha_data.py``."""
    p = Parser(prog="captcha-data", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--output-dir", type=Path, default=Path("data/captcha"), help="(default: %(default)s)"
    )
    p.add_argument("--split", default="train", help="split name (train, val, test, ...)")
    p.add_argument(
        "--count",
        type=_positive_int,
        default=None,
        help="number of images (default: 6000 for train, 2000 otherwise, as in the seed)",
    )
    p.add_argument("--subset", type=_positive_int, help="also write {split}_subset_{N}.jsonl")
    p.add_argument("--seed", type=int, default=0, help="same seed -> identical files")
    p.add_argument("--digits", type=_positive_int, default=6, help="answer length")
    p.add_argument(
        "--style",
        choices=CAPTCHA_STYLES,
        default="harness",
        help="harness: clean glyphs (96x32); imagecaptcha: the `captcha` package's (200x200)",
    )
    p.add_argument("--width", type=_positive_int, help="image width (default: the style's)")
    p.add_argument("--height", type=_positive_int, help="image height (default: the style's)")
    p.add_argument("--question", default=DEFAULT_QUESTION, help="question in every record")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m harness.data.captcha`` / ``captcha-data``: bad arguments and an
    unwritable ``--output-dir`` are one line and exit 2 (``harness.contracts.errors``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    count = args.count if args.count is not None else DEFAULT_COUNTS.get(args.split, 2000)
    args.width, args.height = style_size(args.style, args.width, args.height)
    try:
        _validate(args.split, count, args.digits, args.width, args.height, args.style)
        if args.subset is not None and args.subset > count:
            raise ValueError(f"--subset {args.subset} is larger than --count {count}")
    except ValueError as exc:
        parser.error(str(exc))
    return run_command(lambda: _write(args, count))


def _write(args: argparse.Namespace, count: int) -> int:
    out = writable_dir(args.output_dir, "captchas", "--output-dir")
    start = time.perf_counter()
    try:
        jsonl = generate_split(
            out,
            args.split,
            count,
            seed=args.seed,
            digits=args.digits,
            width=args.width,
            height=args.height,
            question=args.question,
            subset=args.subset,
            style=args.style,
        )
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise  # the boundary's one line: free space, run again (exit 1)
        raise InputError(exc.filename or out, f"cannot write here ({os_reason(exc)})") from None
    print(f"wrote {count} images and {jsonl} in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
