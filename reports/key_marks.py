"""Marks the key table puts on config keys, as the report needs them.

A key whose dataclass field carries ``SAME_FUNCTION`` metadata (``harness/contracts/config.py``)
must not change the function learned, only speed or memory: ``attention.impl`` (sdpa and
eager_dense compute the same mask, equal up to float rounding). Cells that differ only in such
keys form an A/A pair (``reports/noise.py``).
"""

from __future__ import annotations

import dataclasses
import typing
from functools import cache

from harness.contracts.config import SAME_FUNCTION, CellConfig


def _walk(cls: type, prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(_walk(hints[f.name], f"{prefix}{f.name}."))
        elif SAME_FUNCTION in f.metadata:
            out[f"{prefix}{f.name}"] = str(f.metadata[SAME_FUNCTION])
    return out


@cache
def same_function_keys() -> dict[str, str]:
    """Dotted key -> why its values must not change the function learned."""
    return _walk(CellConfig, "")
