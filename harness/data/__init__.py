"""Datasets: the seed's JSONL format and the synthetic captcha generator."""

from __future__ import annotations

from typing import Any

from harness.data.jsonl import DataError, Record, load_image, read_records

__all__ = [
    "DataError",
    "Record",
    "ensure_captcha_split",
    "generate_split",
    "load_image",
    "read_records",
]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m harness.data.captcha` does not find the module
    # already in sys.modules (runpy would warn).
    if name in ("ensure_captcha_split", "generate_split"):
        from harness.data import captcha

        return getattr(captcha, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
