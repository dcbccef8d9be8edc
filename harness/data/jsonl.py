"""Reader for the seed's JSONL fine-tuning format.

One JSON object per line::

    {"image": "images/doc1.png", "question": "What is the total?", "answer": "$1,234.56"}

``image`` may also be spelled ``image_path``, ``question`` ``prompt`` and ``answer``
``response``. Relative image paths are resolved against the JSONL file's directory. Records
without an image are text-only (causal-LM tasks). Every problem raises :class:`DataError`
naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

IMAGE_KEYS = ("image", "image_path")
QUESTION_KEYS = ("question", "prompt")
ANSWER_KEYS = ("answer", "response")
ID_KEY = "id"


class DataError(ValueError):
    """A dataset file or image is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class Record:
    """One example: an optional image plus a question and its expected answer."""

    id: str
    """Explicit ``id`` field, else ``"{jsonl stem}:{line number}"``."""
    image_path: Path | None
    """Absolute-or-as-given path to the image; ``None`` for text-only records."""
    question: str
    """Question (prompt) shown to the model."""
    answer: str
    """Expected answer (ground truth)."""
    source: str = field(default="", compare=False, repr=False)
    """``"{jsonl path}:{line}"``, for error messages (e.g. ``load_image(..., record.source)``)."""


def _pick(obj: dict[str, Any], keys: tuple[str, ...], where: str) -> str | None:
    """The value of whichever alias of a field is present (at most one may be)."""
    present = [k for k in keys if obj.get(k) is not None]
    if len(present) > 1:
        raise DataError(f"{where}: both {present[0]!r} and {present[1]!r} given; use one")
    if not present:
        return None
    value = obj[present[0]]
    if not isinstance(value, str):
        kind = type(value).__name__
        raise DataError(f"{where}: field {present[0]!r} must be a string, got {kind}")
    return value


def _require(obj: dict[str, Any], keys: tuple[str, ...], where: str) -> str:
    value = _pick(obj, keys, where)
    if value is None:
        names = " or ".join(repr(k) for k in keys)
        raise DataError(f"{where}: missing field {names}; got keys {sorted(obj)}")
    return value


def _image_path(value: str, base: Path, where: str) -> Path:
    if not value.strip():
        raise DataError(f"{where}: image path is empty")
    path = Path(value)
    if not path.is_absolute():
        path = base / path
    if not path.is_file():
        problem = "is not a file" if path.exists() else "not found"
        raise DataError(
            f"{where}: image {problem}: {path} (relative paths are resolved against the "
            "JSONL file's directory)"
        )
    return path


def _record(obj: Any, jsonl: Path, lineno: int, base: Path) -> Record:
    where = f"{jsonl}:{lineno}"
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    rec_id = obj.get(ID_KEY)
    if rec_id is None:
        rec_id = f"{jsonl.stem}:{lineno}"
    elif isinstance(rec_id, int) and not isinstance(rec_id, bool):
        rec_id = str(rec_id)
    elif not isinstance(rec_id, str):
        raise DataError(f"{where}: field 'id' must be a string or integer")
    image = _pick(obj, IMAGE_KEYS, where)
    question = _require(obj, QUESTION_KEYS, where)
    answer = _require(obj, ANSWER_KEYS, where)
    return Record(
        id=rec_id,
        image_path=None if image is None else _image_path(image, base, where),
        question=question,
        answer=answer,
        source=where,
    )


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: dataset file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a JSONL file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read dataset file: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text") from None


def read_records(path: str | Path) -> list[Record]:
    """Parse a JSONL dataset, checking every field and that every image file exists."""
    jsonl = Path(path)
    base = jsonl.absolute().parent
    records: list[Record] = []
    first_line_of: dict[str, int] = {}
    for lineno, line in enumerate(_read_text(jsonl).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{jsonl}:{lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        record = _record(obj, jsonl, lineno, base)
        if record.id in first_line_of:
            first = first_line_of[record.id]
            raise DataError(f"{jsonl}:{lineno}: duplicate id {record.id!r} (first on line {first})")
        first_line_of[record.id] = lineno
        records.append(record)
    if not records:
        raise DataError(f"{jsonl}: no records (the file is empty or has only blank lines)")
    return records


def verify_image(path: Path, where: str) -> None:
    """Check that ``path`` is an image PIL can read (its header and, for PNG, every chunk's
    checksum) without decoding it; DataError naming ``where`` (the JSONL line) otherwise."""
    try:
        with Image.open(path) as img:
            img.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{where}: cannot read image {path}: {exc}") from None


def check_dataset(path: str | Path, seen_images: set[Path] | None = None) -> int:
    """Read a JSONL dataset as a cell would (``read_records``) and verify each image once
    (``seen_images``: images already verified, shared between files); the record count.
    DataError naming the file and line of the first problem. Torch-free: the runner calls it
    before the first cell starts."""
    seen = set() if seen_images is None else seen_images
    records = read_records(path)
    for record in records:
        if record.image_path is not None and record.image_path not in seen:
            verify_image(record.image_path, record.source)
            seen.add(record.image_path)
    return len(records)


def load_image(path: Path, where: str) -> Image.Image:
    """Decode an image fully into memory as ``L`` or ``RGB``; ``where`` names the JSONL line."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("L", "RGB"):
                return img.copy()
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{where}: cannot read image {path}: {exc}") from None
