"""Tracking hooks: how the runner mirrors cells to an external tracker (W&B), and its settings.

The run store stays the source of truth; a tracker only receives copies, in this order per cell:
``on_cell_start`` once, ``on_record`` for each metrics.jsonl record as it appears, and
``on_cell_end`` once with the final summary (whatever the outcome). A tracker must never make a
cell fail: the runner logs and ignores its exceptions. ``close`` is called once after the last
cell and is bounded in time.

``TrackingConfig`` is the matrix file's ``tracking:`` section (``parse_tracking`` validates it);
``harness/runner/wandb_tracker.py`` merges it with the command line and the environment.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Any, Protocol

MODES: tuple[str, ...] = ("offline", "online", "disabled")
DEFAULT_PROJECT = "vlm-harness"
_BAD_PROJECT_CHARS = re.compile(r"[/\\#?%:]")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


class Tracker(Protocol):
    """Receives a copy of what the runner records."""

    def on_cell_start(self, cell_id: str, info: dict[str, Any], config: dict[str, Any]) -> None:
        """``info`` is the cell.json content (matrix, axes, repeat)."""

    def on_record(self, cell_id: str, record: dict[str, Any]) -> None:
        """One metrics.jsonl record (train or eval)."""

    def on_cell_end(self, cell_id: str, summary: dict[str, Any]) -> None:
        """The cell's final summary.json."""

    def close(self) -> None:
        """After the last cell: finish, within a bounded time."""


class NullTracker:
    """Tracks nothing (the default)."""

    def on_cell_start(self, cell_id: str, info: dict[str, Any], config: dict[str, Any]) -> None:
        pass

    def on_record(self, cell_id: str, record: dict[str, Any]) -> None:
        pass

    def on_cell_end(self, cell_id: str, summary: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class TrackingConfig:
    """The matrix file's ``tracking:`` section (every key optional)."""

    mode: str | None = None
    """`offline` (runs written under the store, `wandb sync` them later), `online` (needs a W&B
    key: `wandb login` or WANDB_API_KEY), `disabled`. Unset: $WANDB_MODE, else `offline`.
    `--wandb` wins over both."""
    project: str | None = None
    """W&B project (default `vlm-harness`; `--wandb-project` wins)."""
    entity: str | None = None
    """W&B entity (team or user); unset: your default entity (`--wandb-entity` wins)."""
    log_model: bool | None = None
    """Log the scored checkpoint as a W&B model artifact (no copy of the file). Unset: on for
    `online`, off for `offline`."""
    tags: tuple[str, ...] = ()
    """Tags on every run of the matrix (each run also gets its outcome as a tag)."""
    finish_timeout_s: float = 120.0
    """After the last cell, how long the runner waits for W&B to finish (uploads included when
    online) before it stops the mirror with a warning."""


def project_problem(project: str) -> str | None:
    """Why W&B would refuse this project name, or None."""
    if not project or len(project) > 128:
        return f"{project!r} must be 1 to 128 characters"
    bad = _BAD_PROJECT_CHARS.search(project)
    return f"{project!r} cannot contain {bad.group()!r} (none of / \\ # ? % :)" if bad else None


def entity_problem(entity: str) -> str | None:
    """Why this is not a W&B entity (team or user) name, or None."""
    ok = _NAME_RE.match(entity) and len(entity) <= 128
    return None if ok else f"{entity!r} is not a W&B entity name (letters, digits, - _ .)"


def parse_tracking(raw: Any, errors: list[str]) -> TrackingConfig:
    """Validate a ``tracking:`` mapping; append one line per problem to ``errors``."""
    if raw is None:
        return TrackingConfig()
    if not isinstance(raw, dict):
        errors.append(f"`tracking`: expected a mapping (mode, project, ...), got {raw!r}")
        return TrackingConfig()
    fields = [f.name for f in dataclasses.fields(TrackingConfig)]
    out: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"tracking.{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" - did you mean `{close[0]}`?" if close else f" (valid: {', '.join(fields)})"
            errors.append(f"unknown key `{where}`{hint}")
        elif value is None:
            continue
        elif key == "mode" and value not in MODES:
            errors.append(f"`{where}`: {value!r} is not one of {', '.join(MODES)}")
        elif key in ("project", "entity") and not isinstance(value, str):
            errors.append(f"`{where}`: expected a string, got {value!r}")
        elif key in ("project", "entity") and (problem := _name_problem(key, value)):
            errors.append(f"`{where}`: {problem}")
        elif key == "log_model" and not isinstance(value, bool):
            errors.append(f"`{where}`: expected true or false, got {value!r}")
        elif key == "tags" and not _is_tag_list(value):
            errors.append(f"`{where}`: expected a list of strings of 1 to 64 characters")
        elif key == "finish_timeout_s" and not _positive(value):
            errors.append(f"`{where}`: expected a number of seconds > 0, got {value!r}")
        else:
            out[key] = tuple(value) if key == "tags" else value
    return TrackingConfig(**out)


def _name_problem(key: str, value: str) -> str | None:
    return project_problem(value) if key == "project" else entity_problem(value)


def _is_tag_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) and 0 < len(t) <= 64 for t in value)


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
