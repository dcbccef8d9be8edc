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

import re
from dataclasses import dataclass
from typing import Any, Protocol

from harness.contracts.keys import check_section

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
    """Validate a ``tracking:`` mapping; append one line per problem to ``errors``. Keys and
    types go through the one check of every config key (``keys.check_section``); what W&B
    itself would refuse is checked here."""
    if raw is None:
        return TrackingConfig()
    values = check_section(TrackingConfig, raw, "tracking", errors)
    for key in list(values):
        problem = _value_problem(key, values[key], raw[key])
        if problem:
            errors.append(f"`tracking.{key}`: {problem}")
            del values[key]
    if "tags" in values:
        values["tags"] = tuple(values["tags"])
    return TrackingConfig(**values)


def _value_problem(key: str, value: Any, written: Any) -> str | None:
    """Why a well-typed ``tracking.KEY`` value cannot be used, or None."""
    if key == "mode" and value not in MODES:
        return f"{value!r} is not one of {', '.join(MODES)}"
    if key == "project":
        return project_problem(value)
    if key == "entity":
        return entity_problem(value)
    if key == "tags" and not all(0 < len(t) <= 64 for t in value):
        return "expected a list of strings of 1 to 64 characters"
    if key == "finish_timeout_s" and value <= 0:
        return f"expected a number of seconds > 0, got {written!r}"
    return None
