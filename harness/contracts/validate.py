"""Type-check plain JSON data against a dataclass's annotations (the run-store schema on read).

``check_fields(Summary, data)`` walks the annotations: scalars (int, float accepting ints, str,
bool), ``X | None``, ``list[...]``, ``dict[...]`` and nested dataclasses. Keys the class does not
know are allowed (older or newer writers); a known key with a value of the wrong type, or a
missing top-level key that has no default (with ``require``; nested sections are checked for
types only, since a cell that ended early has partial sections), is a problem line naming the
dotted key.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, get_args, get_origin

_SCALAR = (int, float, str, bool)


@functools.cache
def _plan(cls: type) -> tuple[tuple[str, Any, bool, tuple[type, ...] | None], ...]:
    """Per field: (name, annotation, required, accepted types for a plain isinstance check, or
    None when the annotation needs the full walk). Scalars and ``X | None`` of scalars take the
    fast path (an int is a float; a bool is not a number)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out.append((f.name, tp, required, _plain_types(tp)))
    return tuple(out)


def _plain_types(tp: Any) -> tuple[type, ...] | None:
    args = get_args(tp) if get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    if not all(a in _SCALAR or a is type(None) for a in args):
        return None
    accepted: list[type] = []
    for a in args:
        accepted += [int, float] if a is float else [a]
    return tuple(accepted)


def check_fields(
    cls: type, data: dict[str, Any], prefix: str = "", require: bool = True
) -> list[str]:
    """Problems of ``data`` as an instance of dataclass ``cls`` (empty when it fits)."""
    problems: list[str] = []
    for name, tp, required, plain in _plan(cls):
        if name not in data:
            if required and require:
                problems.append(f"`{prefix}{name}` is missing")
            continue
        value = data[name]
        if plain is not None:
            if isinstance(value, plain) and (bool in plain or not isinstance(value, bool)):
                continue
            problems.append(_wrong(f"{prefix}{name}", tp, value))
            continue
        problems += _check(value, tp, f"{prefix}{name}")
    return problems


def _check(value: Any, tp: Any, key: str) -> list[str]:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return []
        options = [a for a in get_args(tp) if a is not type(None)]
        found = [_check(value, option, key) for option in options]
        if any(not problems for problems in found):
            return []
        return found[0] if len(options) == 1 else [_wrong(key, tp, value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            return [_wrong(key, tp, value)]
        return check_fields(tp, value, key + ".", require=False)
    if origin in (list, tuple):
        return [] if isinstance(value, list) else [_wrong(key, tp, value)]
    if origin is dict or tp is dict:
        return [] if isinstance(value, dict) else [_wrong(key, tp, value)]
    if tp is Any:
        return []
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    return [] if ok else [_wrong(key, tp, value)]


def _wrong(key: str, tp: Any, value: Any) -> str:
    name = getattr(tp, "__name__", None) or str(tp).replace("typing.", "").replace("harness.", "")
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"`{key}` should be {name}, got {shown}"
