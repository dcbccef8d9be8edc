"""W&B artifact references: ``[entity/][project/]name[:alias]``, parsed with clear errors.

wandb has no public parser for this grammar (shared/reference/wandb.md): the reference is split
at the first ``:`` into a path and an alias; the path has one to three ``/``-separated parts
(``name``, ``project/name``, ``entity/project/name``). Artifact names have no ``/`` and are at
most 128 characters. An alias ``vN`` names an immutable version; any other alias (``latest``,
``best``) can move, so only ``vN`` may be served from a local copy without asking the server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_NAME = 128
DEFAULT_ALIAS = "latest"
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_ALIAS = re.compile(r"^[A-Za-z0-9_.\-]+$")
_VERSION = re.compile(r"^v(\d+)$")
EXAMPLE = "entity/project/name:v3"


class RefError(ValueError):
    """A malformed artifact reference; the message quotes it and shows the valid form."""


@dataclass(frozen=True)
class ArtifactRef:
    """One parsed reference. ``entity``/``project`` are None when left to W&B's defaults."""

    name: str
    entity: str | None = None
    project: str | None = None
    alias: str | None = None
    """``None`` means W&B's default alias (``latest``)."""

    @property
    def version(self) -> int | None:
        """N of an immutable ``vN`` alias, else None."""
        m = _VERSION.match(self.alias or "")
        return int(m.group(1)) if m else None

    @property
    def immutable(self) -> bool:
        """Whether the alias names one fixed version (``vN``), safe to reuse from a local copy."""
        return self.version is not None

    @property
    def path(self) -> str:
        """``[entity/][project/]name`` without the alias."""
        return "/".join(p for p in (self.entity, self.project, self.name) if p)

    @property
    def dirname(self) -> str | None:
        """Folder wandb downloads an immutable version into (``name:vN``), else None."""
        return f"{self.name}:{self.alias}" if self.immutable else None

    def __str__(self) -> str:
        return f"{self.path}:{self.alias or DEFAULT_ALIAS}"


def _check_part(kind: str, value: str, text: str) -> None:
    if not value:
        raise RefError(f"artifact reference {text!r}: empty {kind}; expected {_form()}")
    if not _PART.match(value):
        raise RefError(
            f"artifact reference {text!r}: {kind} {value!r} may only hold letters, digits, "
            f"'-', '_' and '.' (and starts with a letter or digit); expected {_form()}"
        )


def _form() -> str:
    return f"[entity/][project/]name[:alias], e.g. {EXAMPLE}"


def parse_ref(text: str) -> ArtifactRef:
    """Parse ``[entity/][project/]name[:alias]``; raises RefError naming what is wrong."""
    raw = text.strip()
    if not raw:
        raise RefError(f"artifact reference is empty; expected {_form()}")
    path, sep, alias = raw.partition(":")
    if sep and not alias:
        raise RefError(f"artifact reference {text!r}: empty alias after ':'; expected {_form()}")
    if sep and not _ALIAS.match(alias):
        raise RefError(
            f"artifact reference {text!r}: alias {alias!r} may only hold letters, digits, "
            f"'-', '_' and '.' (a version is vN); expected {_form()}"
        )
    parts = path.split("/")
    if len(parts) > 3:
        raise RefError(
            f"artifact reference {text!r}: {len(parts)} '/'-separated parts, at most 3 "
            f"(entity/project/name); expected {_form()}"
        )
    kinds = ("entity", "project", "name")[3 - len(parts) :]
    for kind, value in zip(kinds, parts, strict=True):
        _check_part(kind, value, text)
    name = parts[-1]
    if len(name) > MAX_NAME:
        raise RefError(
            f"artifact reference {text!r}: name is {len(name)} characters, at most {MAX_NAME}"
        )
    values = dict(zip(kinds, parts, strict=True))
    return ArtifactRef(
        name=name,
        entity=values.get("entity"),
        project=values.get("project"),
        alias=alias or None,
    )
