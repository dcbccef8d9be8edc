"""The one walker over dataclass annotations: check plain data against a type, in two modes.

- ``coerce(value, tp, key, errors)``: a value a user wrote (a cell config key, a matrix's
  ``tracking:`` section). Literal values, 64-bit integers, finite numbers and list items are
  checked; ints are widened to float. A problem reads ``\\`train.lr\\`: expected a number, got
  'fast'``.
- ``check_fields(Summary, data)``: a run-store file on read (``harness/contracts/schema.py``).
  Scalars (int, float accepting ints, str, bool), ``X | None``, lists and mappings (not their
  items) and nested dataclasses. Keys the class does not know are allowed (older or newer
  writers); a known key with a value of the wrong type, or a missing top-level key that has no
  default (with ``require``; nested sections are checked for types only, since a cell that ended
  early has partial sections), is a problem line naming the dotted key: ``\\`outcome\\` should be
  str, got 3``. Stored numbers are not range-checked: a diverged cell's NaN is data, and the
  readers' own checks name a count past its total.

A value is shown in a problem line cut to ``MAX_SHOWN`` characters (a value can be huge).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin

MAX_SHOWN = 60
"""Characters of a user's or a file's value quoted in a problem line."""
INT_RANGE = (-(2**63), 2**63 - 1)
"""Integers a config accepts (what torch and the JSON readers handle)."""

_SCALARS: dict[type, tuple[tuple[type, ...], str, str]] = {
    bool: ((bool,), "true or false", "true/false values"),
    int: ((int,), "an integer", "integers"),
    float: ((int, float), "a number", "numbers"),
    str: ((str,), "a string", "strings"),
}
"""Scalar annotation -> (accepted types, what one is called, what several are called)."""
_UNIONS = (typing.Union, types.UnionType)


def coerce(value: Any, tp: Any, key: str, errors: list[str], stored: bool = False) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widened to float).

    Problems are appended to ``errors``, one line each, naming the dotted ``key``; ``stored``:
    the run-store reading (module docstring). A nested dataclass's mapping is returned as is for
    the caller to build (user input) or checked field by field (stored).
    """
    origin = get_origin(tp)
    if origin in _UNIONS:
        return _coerce_union(value, tp, key, errors, stored)
    if origin is Literal:
        if value not in get_args(tp):
            errors.append(
                _literal_problem(value, tp, key) if not stored else _wrong(key, tp, value, stored)
            )
        return value
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, list):
            errors.append(_wrong(key, tp, value, stored))
            return None
        item = _item_type(tp)
        if stored or item is Any:
            return value
        return [coerce(v, item, f"{key}[{i}]", errors) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            errors.append(_wrong(key, tp, value, stored))
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            errors.append(_wrong(key, tp, value, stored))
            return None
        if stored:
            errors.extend(check_fields(tp, value, key + ".", require=False))
        return value
    if tp is Any:
        return value
    return _coerce_scalar(value, tp, key, errors, stored)


def _coerce_union(value: Any, tp: Any, key: str, errors: list[str], stored: bool) -> Any:
    args = get_args(tp)
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    found: list[list[str]] = []
    for arg in options:
        sub: list[str] = []
        out = coerce(value, arg, key, sub, stored)
        if not sub:
            return out
        found.append(sub)
    if stored and len(options) == 1:
        errors.extend(found[0])  # `X | None`: X's own problem (a nested section names its key)
    else:
        errors.append(_wrong(key, tp, value, stored))
    return None


def _coerce_scalar(value: Any, tp: Any, key: str, errors: list[str], stored: bool) -> Any:
    if tp not in _SCALARS:
        if isinstance(tp, type) and not isinstance(value, tp):
            errors.append(_wrong(key, tp, value, stored))
        return value
    accepted = _SCALARS[tp][0]
    if (isinstance(value, bool) and tp is not bool) or not isinstance(value, accepted):
        errors.append(_wrong(key, tp, value, stored))
        return value
    if stored:
        return value
    if tp is int and not INT_RANGE[0] <= value <= INT_RANGE[1]:
        errors.append(f"`{key}`: {shown(value)} is out of range (a 64-bit integer)")
    if tp is float:
        number = float(value) if abs(value) < 2.0**1023 else math.inf
        if not math.isfinite(number):
            errors.append(f"`{key}`: expected a finite number, got {shown(value)}")
        return number
    return value


def _item_type(tp: Any) -> Any:
    """``list[X]`` and ``tuple[X, ...]`` -> X; a bare list -> Any."""
    args = [a for a in get_args(tp) if a is not Ellipsis]
    return args[0] if len(args) == 1 else Any


def _literal_problem(value: Any, tp: Any, key: str) -> str:
    valid = [str(a) for a in get_args(tp)]
    close = difflib.get_close_matches(str(value), valid, n=1)
    hint = f" - did you mean `{close[0]}`?" if close else ""
    return f"`{key}`: {shown(value)} is not one of: {', '.join(valid)}{hint}"


def _wrong(key: str, tp: Any, value: Any, stored: bool) -> str:
    if stored:
        name = getattr(tp, "__name__", None) or type_name(tp).replace("harness.", "")
        return f"`{key}` should be {name}, got {shown(value)}"
    return f"`{key}`: expected {_expected(tp)}, got {shown(value)}"


def _expected(tp: Any) -> str:
    """What a user should write for ``tp`` (``a number``, ``a list of strings``)."""
    if tp in _SCALARS:
        return _SCALARS[tp][1]
    if get_origin(tp) in (list, tuple) or tp in (list, tuple):
        item = _item_type(tp)
        return f"a list of {_SCALARS[item][2]}" if item in _SCALARS else "a list"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} fields"
    return type_name(tp)


def type_name(tp: Any) -> str:
    """An annotation as a person reads it: ``int | 'auto' | None`` for
    ``int | Literal["auto"] | None`` (a Literal is its values)."""
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in _UNIONS:
        return " | ".join("None" if a is type(None) else type_name(a) for a in get_args(tp))
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr`` of a value, cut to ``limit`` characters."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4300-digit str limit
        return "a number too large to print"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- stored files


@functools.cache
def _plan(cls: type) -> tuple[tuple[str, Any, bool, tuple[type, ...] | None], ...]:
    """Per field: (name, annotation, required, accepted types for a plain isinstance check, or
    None when the annotation needs the full walk). Scalars and ``X | None`` of scalars take the
    fast path (an int is a float; a bool is not a number): a store has thousands of records."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out.append((f.name, tp, required, _plain_types(tp)))
    return tuple(out)


def _plain_types(tp: Any) -> tuple[type, ...] | None:
    args = get_args(tp) if get_origin(tp) in _UNIONS else (tp,)
    if not all(a in _SCALARS or a is type(None) for a in args):
        return None
    accepted: list[type] = []
    for a in args:
        accepted += [int, float] if a is float else [a]
    return tuple(accepted)


def check_fields(
    cls: type, data: dict[str, Any], prefix: str = "", require: bool = True
) -> list[str]:
    """Problems of stored ``data`` as an instance of dataclass ``cls`` (empty when it fits)."""
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
            problems.append(_wrong(f"{prefix}{name}", tp, value, stored=True))
            continue
        coerce(value, tp, f"{prefix}{name}", problems, stored=True)
    return problems
