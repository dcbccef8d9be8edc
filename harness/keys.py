"""Dotted config keys (``train.lr``): one table of leaf keys and their types, one coercion rule,
one "did you mean" wording, used by the cell config (``harness/config.py``), the matrix parser
(``harness/runner/matrix.py``) and the reports (plain ``flatten``)."""

from __future__ import annotations

from typing import Any


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {dotted key: leaf value} (an empty mapping is a leaf)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
