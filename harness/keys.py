"""Dotted config keys (``train.lr``): one table of leaf keys and their types, one coercion rule,
one "did you mean" wording, used by the cell config (``harness/config.py``), the matrix parser
(``harness/runner/matrix.py``) and the reports (plain ``flatten``)."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from functools import cached_property
from typing import Any, Literal, get_args, get_origin

MAX_LISTED = 24
"""An unknown key with no close match lists the valid keys when there are at most this many."""


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {dotted key: leaf value} (an empty mapping is a leaf)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(d, "train.lr", 1e-3)`` creates intermediate mappings as needed."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def get_dotted(data: dict[str, Any], key: str, default: Any = None) -> Any:
    """The value at a dotted key, or ``default`` when a part is missing."""
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def unknown_key(key: str, options: list[str]) -> str:
    """The one wording of an unknown key: a close match, else the valid keys (or where they are)."""
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    if close:
        return f"unknown key `{key}` - did you mean `{close[0]}`?"
    if len(options) <= MAX_LISTED:
        return f"unknown key `{key}` (valid: {', '.join(sorted(options))})"
    return f"unknown key `{key}` (every key is documented in harness/config.py)"


def type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str, errors: list[str]) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widened to float).

    Problems are appended to ``errors``, one line each, naming the dotted ``key``.
    """
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, tp, key, errors)
    if origin is Literal:
        if value not in get_args(tp):
            valid = [str(a) for a in get_args(tp)]
            close = difflib.get_close_matches(str(value), valid, n=1)
            hint = f" - did you mean `{close[0]}`?" if close else ""
            errors.append(f"`{key}`: {value!r} is not one of: {', '.join(valid)}{hint}")
        return value
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            errors.append(f"`{key}`: expected a list, got {value!r}")
            return None
        return [coerce(v, item_tp, f"{key}[{i}]", errors) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            errors.append(f"`{key}`: expected a mapping of {tp.__name__} fields, got {value!r}")
            return None
        return value  # built by the caller
    return _coerce_scalar(value, tp, key, errors)


def _coerce_union(value: Any, tp: Any, key: str, errors: list[str]) -> Any:
    args = get_args(tp)
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        sub_errors: list[str] = []
        out = coerce(value, arg, key, sub_errors)
        if not sub_errors:
            return out
    errors.append(f"`{key}`: expected {type_name(tp)}, got {value!r}")
    return None


_SCALARS: dict[type, tuple[tuple[type, ...], str]] = {
    bool: ((bool,), "true or false"),
    int: ((int,), "an integer"),
    float: ((int, float), "a number"),
    str: ((str,), "a string"),
}


def _coerce_scalar(value: Any, tp: Any, key: str, errors: list[str]) -> Any:
    if tp not in _SCALARS:
        return value
    accepted, wording = _SCALARS[tp]
    if (isinstance(value, bool) and tp is not bool) or not isinstance(value, accepted):
        errors.append(f"`{key}`: expected {wording}, got {value!r}")
        return value
    return float(value) if tp is float else value


class KeyTable:
    """Every dotted leaf key of a config dataclass and its annotation, built once."""

    def __init__(self, root: type) -> None:
        self.root = root

    @cached_property
    def leaves(self) -> dict[str, Any]:
        """Dotted leaf key -> annotation, in declaration order."""
        return _field_paths(self.root, "")

    @cached_property
    def sections(self) -> frozenset[str]:
        """Dotted keys of the nested sections (``train``, ``train.lora``)."""
        return frozenset(
            k.rsplit(".", i)[0] for k in self.leaves for i in range(1, k.count(".") + 1)
        )

    def check(self, key: str, value: Any, where: str, errors: list[str]) -> Any:
        """Type-check one dotted leaf key; errors are prefixed with ``where``; returns the value
        (ints widened to float where the field is a float)."""
        if key in self.sections:
            first = next(k for k in self.leaves if k.startswith(key + "."))
            errors.append(f"{where}`{key}` is a section: set its fields (e.g. `{first}`)")
            return value
        if key not in self.leaves:
            errors.append(where + unknown_key(key, [*self.leaves, *self.sections]))
            return value
        sub: list[str] = []
        out = coerce(value, self.leaves[key], key, sub)
        errors.extend(where + e for e in sub)
        return out

    def flatten_checked(
        self, data: dict[str, Any], where: str, errors: list[str], prefix: str = ""
    ) -> dict[str, Any]:
        """Nested and/or dotted mapping -> {dotted leaf key: checked value}."""
        out: dict[str, Any] = {}
        for k, v in data.items():
            key = f"{prefix}{k}"
            if key in self.sections and isinstance(v, dict):
                out.update(self.flatten_checked(v, where, errors, key + "."))
            elif key in self.sections:
                errors.append(f"{where}`{key}`: expected a mapping of fields, got {v!r}")
            else:
                out[key] = self.check(key, v, where, errors)
        return out


def _field_paths(cls: type, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(_field_paths(tp, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = tp
    return out
