"""Command-line flags declared once, on the dataclass fields they fill.

``flag(default, help, ...)`` is a dataclass field whose metadata holds its flag; ``add_flags``
builds the argparse options from a dataclass (recursing into a field that is itself a dataclass
with flags, at that field's place) and ``from_flags`` builds the dataclass back from what was
passed. The flag's type comes from the field's annotation: ``bool`` is a switch, ``int``,
``float``, ``str`` and ``Path`` (or ``X | None``) are parsed with that type. Every flag is spelled
as the field (``--max_samples``, the seed's spelling) and with dashes (``--max-samples``).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

FLAG = "flag"
"""The metadata key of a field's ``Flag``."""


@dataclass(frozen=True)
class Flag:
    """How a field appears on the command line."""

    help: str | None
    group: str | None = None
    """Title of the help section; None: the main options."""
    metavar: str | None = None
    choices: Collection[str] | None = None
    """The valid values (a live collection, e.g. the task registry, is read when parsing)."""
    one_of: bool = False
    """One of the fields with ``one_of`` must be given, and only one (a required exclusive group)."""
    name: str | None = None
    """The flag's name when it is not the field's: a ``bool`` field that defaults to True is
    switched off by it (``--no_compare`` sets ``compare`` False)."""


def flag(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with ``default`` and a command-line flag (see ``Flag`` for ``kw``)."""
    return field(default=default, metadata={FLAG: Flag(help, **kw)})


def _scalar(hint: Any) -> Any:
    """``int`` of ``int | None``; the type argparse parses the value with."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _nested(hint: Any) -> type | None:
    inner = _scalar(hint)
    return inner if dataclasses.is_dataclass(inner) else None


def _names(name: str) -> list[str]:
    return [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])


def add_flags(parser: argparse.ArgumentParser, cls: type, **fill: str) -> None:
    """Add a flag for every field of ``cls`` that has one, in field order; a help text's
    ``{name}`` is filled from ``fill``. Absent flags leave no attribute (the field's default)."""
    containers: dict[Any, Any] = {}

    def container(f: Flag) -> Any:
        key = "one_of" if f.one_of else f.group
        if key not in containers:
            if f.one_of:
                containers[key] = parser.add_mutually_exclusive_group(required=True)
            else:
                containers[key] = parser.add_argument_group(f.group) if f.group else parser
        return containers[key]

    hints = typing.get_type_hints(cls)

    def add(klass: type) -> None:
        hints.update(typing.get_type_hints(klass))
        for fld in dataclasses.fields(klass):
            if (inner := _nested(hints[fld.name])) is not None:
                add(inner)
                continue
            f: Flag | None = fld.metadata.get(FLAG)
            if f is None:
                continue
            kw: dict[str, Any] = {"dest": fld.name, "default": argparse.SUPPRESS}
            kw["help"] = f.help.format(**fill) if f.help and fill else f.help
            kind = _scalar(hints[fld.name])
            if kind is bool:
                kw["action"] = "store_false" if fld.default is True else "store_true"
            else:
                kw |= {"type": kind, "metavar": f.metavar, "choices": f.choices}
            container(f).add_argument(*_names(f.name or fld.name), **kw)

    add(cls)


def from_flags(cls: type, given: dict[str, Any], **fixed: Any) -> Any:
    """``cls`` from the flags ``given`` (``vars(namespace)``): a field whose flag was passed
    gets its value, a nested dataclass field is built the same way, the rest keep their
    defaults; ``fixed`` values are passed as they are."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = dict(fixed)
    for fld in dataclasses.fields(cls):
        if fld.name in kwargs:
            continue
        if (inner := _nested(hints[fld.name])) is not None:
            kwargs[fld.name] = from_flags(inner, given)
        elif FLAG in fld.metadata and fld.name in given:
            kwargs[fld.name] = given[fld.name]
    return cls(**kwargs)
