"""Dotted config keys (``train.lr``): one table of leaf keys and their types, one "did you mean"
wording for an unknown key, used by the cell config (``harness/contracts/config.py``), the matrix
parser (``harness/runner/matrix.py``: its top-level keys, cell keys and ``tracking:``
section) and the reports (plain ``flatten``). Types are checked by the one annotation walker,
``harness/contracts/validate.py``; YAML is read by ``harness/contracts/yaml_io.py``."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from harness.contracts.validate import coerce, shown

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


def unknown_key(key: str, options: Sequence[str], where: str = "", what: str = "key") -> str:
    """The one wording of an unknown key (``where``: the section it is in, e.g. ``tracking.``):
    a close match among ``options``, else the valid keys (or where they are documented)."""
    close = difflib.get_close_matches(key, list(options), n=1, cutoff=0.6)
    name = f"unknown {what} `{where}{key}`"
    if close:
        return f"{name} - did you mean `{close[0]}`?"
    if len(options) <= MAX_LISTED:
        return f"{name} (valid: {', '.join(sorted(options))})"
    return f"{name} (every key is documented in harness/contracts/config.py)"


def check_section(cls: type, raw: Any, section: str, errors: list[str]) -> dict[str, Any]:
    """A flat section of a file (a matrix's ``tracking:``) as {field: checked value} for the
    fields it sets (a null is the default, left out); an unknown key or a wrong type is a line
    in ``errors``, in the same wording as a cell key's."""
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(raw, dict):
        listed = ", ".join(names[:2])
        errors.append(f"`{section}`: expected a mapping ({listed}, ...), got {shown(raw)}")
        return {}
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in names:
            errors.append(unknown_key(str(key), names, where=f"{section}."))
            continue
        if value is None:
            continue
        sub: list[str] = []
        checked = coerce(value, _without_none(hints[key]), f"{section}.{key}", sub)
        errors.extend(sub)
        if not sub:
            out[key] = checked
    return out


def _without_none(tp: Any) -> Any:
    """``X | None`` -> X (a null is handled before the type is checked)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        return rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
    return tp


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
