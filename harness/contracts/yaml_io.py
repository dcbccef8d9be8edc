"""Reading YAML: what a user wrote (``YamlLoader``: ``1e-3`` is a float) and what a run store
holds (``StoreYamlLoader``: libyaml when present), both safe and with aliases bounded, so that an
alias bomb is refused before anything walks it. Problems are one line each, appended to the
caller's ``errors`` (the config and matrix parsers report every problem at once).
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

from harness.contracts.errors import InputError, read_text

MAX_YAML_NODES = 100_000
"""A YAML file may expand to at most this many values, every use of an alias counted: an alias
bomb is refused before anything walks it (real matrices are a few hundred)."""


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
