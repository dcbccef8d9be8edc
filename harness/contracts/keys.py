"""Dotted config keys (``train.lr``): one table of leaf keys and their types, one coercion rule,
one "did you mean" wording, used by the cell config (``harness/contracts/config.py``), the matrix parser
(``harness/runner/matrix.py``) and the reports (plain ``flatten``)."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
import typing
from functools import cached_property
from typing import Any, Literal, get_args, get_origin

import yaml

from harness.contracts.errors import InputError, read_text

MAX_LISTED = 24
"""An unknown key with no close match lists the valid keys when there are at most this many."""
MAX_YAML_NODES = 100_000
"""A YAML file may expand to at most this many values, every use of an alias counted: an alias
bomb is refused before anything walks it (real matrices are a few hundred)."""
INT_RANGE = (-(2**63), 2**63 - 1)
"""Integers a config accepts (what torch and the JSON readers handle)."""


class _Bounded:
    """Loader mixin: refuse a document whose aliases expand past ``MAX_YAML_NODES`` values, or
    refer to themselves, before it is constructed (checked on the composed node graph)."""

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()  # type: ignore[misc]
        if node is not None:
            _check_expansion(node)
        return node


class YamlLoader(_Bounded, yaml.SafeLoader):
    """The loader of YAML a user wrote: safe, aliases bounded, and ``1e-3`` read as a float
    (YAML 1.1 would make it a string)."""


class StoreYamlLoader(_Bounded, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The loader of YAML in a run store (fast: libyaml when present), aliases bounded."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
        r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


class YamlExpansionError(yaml.YAMLError):
    """The document's aliases expand too far (an alias bomb) or refer to themselves."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Count the values of the expanded document without expanding it (each node once)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_YAML_NODES:
                raise YamlExpansionError(
                    f"its aliases expand to more than {MAX_YAML_NODES:,} values (an alias "
                    "bomb?); write the values out or use fewer aliases"
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlExpansionError("an alias refers to a value that contains it (a loop)")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def parse_yaml(text: str, errors: list[str]) -> Any:
    """A YAML document (``YamlLoader``); a problem is appended to ``errors`` (None returned)."""
    try:
        return yaml.load(text, Loader=YamlLoader)
    except YamlExpansionError as exc:
        errors.append(f"refused: {exc}")
    except yaml.YAMLError as exc:
        errors.append(f"malformed YAML: {' '.join(str(exc).split())}")
    except ValueError as exc:  # int() of a number past Python's digit limit, in the constructor
        errors.append(f"a value cannot be read ({str(exc).split(';')[0]}); use a smaller number")
    return None


def read_yaml(path: str | os.PathLike[str], errors: list[str]) -> Any:
    """The YAML file a user named: readable, UTF-8, well formed, aliases bounded. A problem is
    appended to ``errors`` in one line (None returned)."""
    try:
        text = read_text(path, "YAML file")
    except InputError as exc:
        errors.append(exc.problem)
        return None
    return parse_yaml(text, errors)


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
    return f"unknown key `{key}` (every key is documented in harness/contracts/config.py)"


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
            errors.append(f"`{key}`: {_shown(value)} is not one of: {', '.join(valid)}{hint}")
        return value
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            errors.append(f"`{key}`: expected a list, got {_shown(value)}")
            return None
        return [coerce(v, item_tp, f"{key}[{i}]", errors) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            errors.append(
                f"`{key}`: expected a mapping of {tp.__name__} fields, got {_shown(value)}"
            )
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
    errors.append(f"`{key}`: expected {type_name(tp)}, got {_shown(value)}")
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
        errors.append(f"`{key}`: expected {wording}, got {_shown(value)}")
        return value
    if tp is int and not INT_RANGE[0] <= value <= INT_RANGE[1]:
        errors.append(f"`{key}`: {_shown(value)} is out of range (a 64-bit integer)")
    if tp is float:
        number = float(value) if abs(value) < 2.0**1023 else math.inf
        if not math.isfinite(number):
            errors.append(f"`{key}`: expected a finite number, got {_shown(value)}")
        return number
    return value


def _shown(value: Any, limit: int = 60) -> str:
    """``repr`` of a user's value, cut to ``limit`` characters (a value can be huge)."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4300-digit str limit
        return "a number too large to print"
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
