"""Per-sample results for the disagreement and error views, and the images of those samples.

Predictions are stored once per cell, aligned to one list of sample ids: ``1`` for a correct
prediction, the wrong prediction's text otherwise, ``null`` for a sample the cell did not score.

Images are the held-out split's own files, found from a cell's settings the way the cell read
them (``data.kind: jsonl``: ``data.test_path`` or ``data.val_path``; ``captcha``: the cached
split under ``data.cache_dir``), and inlined as ``data:`` URIs. At most ``MAX_IMAGES`` are
inlined: the samples the cells disagree on first (the disagreement view), then the ones every
cell got wrong; a sample without an inlined image is shown with its answer only.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

from harness.contracts.paths import REPO_ROOT
from reports.plot_style import setting
from reports.results import CellResult, Results

MAX_IMAGES = 300
"""Thumbnails inlined per page (a captcha PNG is ~1-2 kB)."""
MAX_IMAGE_BYTES = 64 * 1024
"""A larger image file is not inlined (the page must stay small)."""
IMAGE_KEYS = ("image", "image_path")
"""Keys of a JSONL record that name its image (as ``harness/data/jsonl.py`` reads them)."""
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}


def sample_table(store: Results) -> tuple[list[dict[str, str]], dict[str, list[Any]]]:
    """(samples, predictions): every scored sample id once (with its answer), and per cell the
    predictions aligned to it."""
    index: dict[Any, int] = {}
    samples: list[dict[str, str]] = []
    for c in store.cells:
        for p in c.predictions:
            sid = p.get("id")
            if sid not in index:
                index[sid] = len(samples)
                samples.append({"id": str(sid), "answer": str(p.get("answer") or "")})
    out: dict[str, list[Any]] = {}
    for c in store.cells:
        if not c.predictions:
            continue
        row: list[Any] = [None] * len(samples)
        for p in c.predictions:
            row[index[p.get("id")]] = 1 if p.get("correct") else str(p.get("prediction") or "")
        out[c.cell_id] = row
    return samples, out


def _wanted(store: Results, limit: int) -> list[str]:
    """Sample ids whose images are worth inlining: split decisions first, then all-wrong."""
    right: Counter = Counter()
    scored: Counter = Counter()
    for c in store.cells:
        for p in c.predictions:
            scored[p.get("id")] += 1
            right[p.get("id")] += bool(p.get("correct"))
    split = [s for s in scored if 0 < right[s] < scored[s]]
    wrong = [s for s in scored if right[s] == 0]
    ranked = sorted(split, key=lambda s: (-min(right[s], scored[s] - right[s]), str(s)))
    return [str(s) for s in (ranked + sorted(wrong, key=str))[:limit]]


def _resolve(path: str) -> list[Path]:
    p = Path(path).expanduser()
    return [p] if p.is_absolute() else [Path.cwd() / p, REPO_ROOT / p]


def _data_settings(store: Results, cell: CellResult) -> tuple[Any, ...]:
    keys = ("kind", "test_path", "val_path", "cache_dir", "test_count", "digits")
    keys += ("image_width", "image_height")
    return tuple(setting(store, cell, f"data.{k}") for k in keys)


def _split_files(kind, test, val, cache, count, digits, width, height) -> tuple[Path, ...]:
    """Candidate JSONL files of a scored split (arguments: ``_data_settings``)."""
    if kind == "jsonl":
        path = test or val
        return tuple(_resolve(str(path))) if path else ()
    if kind not in (None, "captcha"):
        return ()
    name = f"test-n{count or 500}-s0-d{digits or 6}-{width or 96}x{height or 32}-*"
    roots = _resolve(str(cache or "data/captcha"))
    return tuple(d / "test.jsonl" for root in roots for d in sorted(root.glob(name)))


def _read_split(path: Path) -> dict[str, Path]:
    """Sample id -> image path of a JSONL split (ids as the data reader gives them)."""
    out: dict[str, Path] = {}
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except (OSError, UnicodeDecodeError):
        return out
    for lineno, line in enumerate(lines, start=1):
        try:
            obj = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        image = next((obj[k] for k in IMAGE_KEYS if isinstance(obj.get(k), str)), None)
        sid = obj.get("id", f"{path.stem}:{lineno}")
        if image:
            out[str(sid)] = Path(image) if Path(image).is_absolute() else path.parent / image
    return out


def _data_uri(path: Path) -> str | None:
    mime = MIME.get(path.suffix.lower())
    try:
        if mime is None or path.stat().st_size > MAX_IMAGE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def images(store: Results, limit: int = MAX_IMAGES) -> dict[str, str]:
    """Sample id -> ``data:`` URI for up to ``limit`` samples whose image file can be found."""
    wanted = _wanted(store, limit)
    if not wanted:
        return {}
    found: dict[str, Path] = {}
    seen: set[Path] = set()
    keys = {_data_settings(store, c) for c in store.cells if c.predictions}
    for key in sorted(keys, key=repr):
        for jsonl in _split_files(*key):
            if jsonl in seen or not jsonl.is_file():
                continue
            seen.add(jsonl)
            for sid, path in _read_split(jsonl).items():
                found.setdefault(sid, path)
    out = {}
    for sid in wanted:
        uri = _data_uri(found[sid]) if sid in found else None
        if uri:
            out[sid] = uri
    return out
