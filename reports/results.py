"""Read a run store into read-only dataclasses (the only module here that touches the disk).

What is read, per cell directory ``STORE/<cell-id>/`` (formats in ``harness/contracts/schema.py``):

- ``cell.json``: ``axes`` (dotted key -> value) and ``repeat`` (written by the runner); when a
  cell has no recorded axes, the varying keys are found by diffing the resolved ``config.yaml``
  of every cell.
- ``summary.json``: outcome, metrics, train, memory, timings, oom, error, provenance. A cell
  without one is shown as "not run / incomplete".
- ``metrics.jsonl``: ``train`` records (loss curves).
- ``predictions.jsonl``: per-sample results (paired tests and error analysis).

Optionally, at the store level, ``matrix.json`` (written by the runner) with any of: ``name``,
``description``, ``axes`` (mapping key -> list of values: sets the order of columns and values)
and ``paired`` (label -> dotted keys that vary together): a paired axis is shown and compared as
one axis named by its label, e.g. ``accumulation`` = ``grad_accum=4, max_steps=700``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from harness.contracts.errors import UserError
from harness.contracts.keys import flatten
from harness.contracts.schema import (
    CELL_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    SUMMARY_FILE,
    SchemaError,
    budget_shortfall,
)
from harness.contracts.store_files import read_metrics, read_predictions, read_summary
from harness.contracts.text_metrics import edit_distance
from harness.contracts.yaml_io import StoreYamlLoader
from reports.key_marks import same_function_keys

MATRIX_FILE = "matrix.json"
REPEAT_KEYS = ("seed",)
"""Axes that mark repeats of one configuration rather than a different configuration."""
ERROR_KINDS = ("empty", "off by 1 char", "off by 2 chars", "off by 3+ chars")


class ResultsError(UserError, ValueError):
    """The path is not a readable run store (message is one line, for the CLI)."""


@dataclass(frozen=True, eq=False)
class CellResult:
    """One cell directory, as stored (derived views are cached properties)."""

    cell_id: str
    axes: dict[str, Any]
    """Varying axes of this cell (dotted key -> value), repeat keys included."""
    repeat: int = 0
    config: dict[str, Any] | None = None
    """Resolved config.yaml (nested); None when missing or not needed (see ``load_results``)."""
    summary: dict[str, Any] | None = None
    """summary.json, or None when the cell has not finished."""
    problem: str | None = None
    """Why the summary could not be read, if it exists but is invalid."""
    curve: tuple[tuple[int, float, float | None], ...] = ()
    """(step, loss, token_accuracy) from the train records of metrics.jsonl."""
    predictions: tuple[dict[str, Any], ...] = ()
    """predictions.jsonl records."""
    keys: dict[str, Any] = field(default_factory=dict)
    """The recorded axes as dotted keys, before paired axes are folded into their label."""

    @property
    def outcome(self) -> str:
        """The summary's outcome, or `incomplete`."""
        return self.summary["outcome"] if self.summary else "incomplete"

    @property
    def config_key(self) -> tuple[tuple[str, Any], ...]:
        """Identity of the configuration: the axes without repeat keys (hashable, sorted)."""
        return tuple(sorted((k, hashable(v)) for k, v in self.axes.items() if k not in REPEAT_KEYS))

    @property
    def shortfall(self) -> str | None:
        """Why a completed cell trained less than its budget (``budget_shortfall``: ``"time cap
        at 241/800 steps"``), judged from the config's ``train.max_steps`` in stores written
        before ``steps_planned`` existed; None when it trained its budget or did not complete."""
        if self.outcome != "completed":
            return None
        train = (self.config or {}).get("train")
        planned = train.get("max_steps") if isinstance(train, dict) else None
        return budget_shortfall(self.summary or {}, planned if isinstance(planned, int) else None)

    def section(self, name: str) -> dict[str, Any]:
        """A mapping section of the summary (``{}`` when absent)."""
        value = (self.summary or {}).get(name)
        return value if isinstance(value, dict) else {}

    def exact(self) -> tuple[int, int] | None:
        """(k, n) exact matches on the reported split, or None when not scored."""
        m = self.section("metrics")
        k, n = m.get("exact_match_k"), m.get("n")
        if isinstance(k, int) and isinstance(n, int) and n > 0:
            return (k, n)
        return None

    @cached_property
    def sample_ids(self) -> frozenset:
        """Ids of the scored samples in predictions.jsonl."""
        return frozenset(p.get("id") for p in self.predictions)

    @cached_property
    def correct_ids(self) -> frozenset:
        """Ids of the samples predicted exactly right."""
        return frozenset(p.get("id") for p in self.predictions if p.get("correct"))

    @cached_property
    def errors(self) -> Counter:
        """Kinds of wrong predictions (ERROR_KINDS), plus `wrong` and `wrong length` totals."""
        counts: Counter = Counter()
        for p in self.predictions:
            if not p.get("correct"):
                pred = str(p.get("prediction") or "").strip()
                truth = str(p.get("answer") or "").strip()
                counts[error_kind(pred, truth, p.get("edit_distance"))] += 1
                counts["wrong length"] += len(pred) != len(truth)
        counts["wrong"] = sum(counts[k] for k in ERROR_KINDS)
        return counts


@dataclass(frozen=True)
class Results:
    """A whole run store: cells sorted by their axes, then repeat, then id."""

    name: str
    description: str
    cells: tuple[CellResult, ...]
    axes: tuple[str, ...]
    """Varying keys, in display order."""
    axis_values: dict[str, tuple[Any, ...]]
    """Distinct values per axis, in display order."""
    fixed: dict[str, Any]
    """Flattened settings that are identical across every cell with a config."""
    meta: dict[str, Any] = field(default_factory=dict)
    """``matrix.json`` as read, paired axes relabelled (``{}`` when absent)."""
    same_function: dict[str, str] = field(default_factory=same_function_keys)
    """Keys the key table marks as not changing the function learned -> why (A/A pairs)."""

    def cell(self, cell_id: str) -> CellResult:
        """The cell with this id."""
        return next(c for c in self.cells if c.cell_id == cell_id)


def error_kind(prediction: str, answer: str, distance: Any = None) -> str:
    """Kind of a wrong prediction: empty, or off by 1 / 2 / 3+ characters (edit distance)."""
    if not prediction:
        return "empty"
    if not isinstance(distance, int):
        distance = edit_distance(prediction, answer)
    return ERROR_KINDS[min(max(distance, 1), 3)]


def hashable(value: Any) -> Any:
    """A hashable stand-in for a config value (lists -> tuples, dicts -> sorted items)."""
    if isinstance(value, list | tuple):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    return value


def sort_key(value: Any) -> tuple[int, Any]:
    """Total order over mixed config values: None, numbers, strings, anything else."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    return (4, repr(value))


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from the store; {} when missing or damaged (binary garbage included)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path) -> Any:
    """A YAML document from the store (safe, aliases bounded); None when missing or damaged."""
    try:
        return yaml.load(path.read_bytes(), Loader=StoreYamlLoader)
    except (OSError, yaml.YAMLError):
        return None
    except ValueError:  # a number past Python's digit limit
        return None


def _curve(records: list[dict[str, Any]]) -> tuple[tuple[int, float, float | None], ...]:
    points = [
        (int(r["step"]), float(r["loss"]), r.get("token_accuracy"))
        for r in records
        if r.get("kind", "train") == "train"
        and "step" in r
        and isinstance(r.get("loss"), int | float)
    ]
    return tuple(sorted(points, key=lambda p: p[0]))


def _load_cell(path: Path) -> CellResult:
    """Read one cell directory except its config (axes may be empty until ``load_results``).

    Every file is validated against ``harness/contracts/schema.py``; a cell with a file that does not fit
    (a torn or hand-edited summary, a metrics line of the wrong type) is a damaged cell: no
    summary, and ``problem`` says which file and key.
    """
    info = _read_json(path / CELL_FILE)
    axes, repeat = info.get("axes"), info.get("repeat", 0)
    cell = CellResult(
        cell_id=str(info.get("cell_id") or path.name),
        axes=dict(axes) if isinstance(axes, dict) else {},
        keys=dict(axes) if isinstance(axes, dict) else {},
        repeat=repeat if isinstance(repeat, int) else 0,
    )
    try:
        summary = read_summary(path / SUMMARY_FILE) if (path / SUMMARY_FILE).exists() else None
        curve = _curve(read_metrics(path / METRICS_FILE))
        predictions = tuple(read_predictions(path / PREDICTIONS_FILE))
    except SchemaError as exc:
        return replace(cell, problem=str(exc).replace(f"{path}/", ""))
    return replace(cell, summary=summary, curve=curve, predictions=predictions)


def _is_cell_dir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).exists() for name in (CELL_FILE, CONFIG_FILE, SUMMARY_FILE)
    )


def _diff_axes(cells: list[CellResult]) -> list[str]:
    """Keys whose value differs between the configs of the cells."""
    flats = [flatten(c.config) for c in cells if c.config is not None]
    if len(flats) < 2:
        return []
    keys = sorted(set().union(*flats))
    return [k for k in keys if len({hashable(f.get(k)) for f in flats}) > 1]


def _merge_paired(
    cells: list[CellResult], meta: dict[str, Any]
) -> tuple[list[CellResult], dict[str, Any]]:
    """Fold each paired axis of ``matrix.json`` (label -> keys that vary together) into one axis
    named by its label, so that its cells compare as differing in one axis, not several."""
    paired = meta.get("paired")
    if not isinstance(paired, dict) or not paired:
        return cells, meta
    groups = {str(lab): keys for lab, keys in paired.items() if isinstance(keys, list) and keys}

    def label_value(keys: list[str], values: dict[str, Any]) -> str:
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={values.get(k)}" for k in keys)

    out = []
    for c in cells:
        axes = dict(c.axes)
        for label, keys in groups.items():
            if all(k in axes for k in keys):
                axes[label] = label_value(keys, {k: axes.pop(k) for k in keys})
        out.append(replace(c, axes=axes))
    declared = meta.get("axes")
    if isinstance(declared, dict):
        declared = dict(declared)
        for label, keys in groups.items():
            if isinstance(declared.get(label), list):
                options = declared[label]
                declared[label] = [
                    label_value(keys, v) if isinstance(v, dict) else v for v in options
                ]
        meta = {**meta, "axes": declared}
    return out, meta


def _fill_axes(cells: list[CellResult], meta: dict[str, Any]) -> tuple[list[CellResult], list[str]]:
    """Give every cell its axes (in display order); return the cells and the ordered keys."""
    keys: set[str] = set().union(*(c.axes for c in cells))
    if any(not c.axes for c in cells) or not keys:
        keys |= set(_diff_axes(cells))
    declared = meta.get("axes")
    order = [k for k in declared if k in keys] if isinstance(declared, dict) else []
    order += sorted(keys - set(order))
    filled = []
    for c in cells:
        flat = flatten(c.config) if c.config is not None else {}
        axes = {k: c.axes[k] if k in c.axes else flat.get(k) for k in order}
        filled.append(replace(c, axes=axes))
    return filled, order


def _axis_values(
    cells: list[CellResult], axes: list[str], meta: dict[str, Any]
) -> dict[str, tuple]:
    declared = meta.get("axes") if isinstance(meta.get("axes"), dict) else {}
    out = {}
    for key in axes:
        seen = {hashable(c.axes.get(key)): c.axes.get(key) for c in cells}
        listed = declared.get(key) if isinstance(declared.get(key), list) else []
        ordered = [v for v in listed if hashable(v) in seen]
        rest = sorted(
            (v for h, v in seen.items() if h not in {hashable(x) for x in ordered}), key=sort_key
        )
        out[key] = tuple(ordered + rest)
    return out


def _fixed(cells: list[CellResult], varied: set[str]) -> dict[str, Any]:
    """Settings every cell shares: the parsed configs' keys that no axis varies (``varied``: the
    dotted keys the cells record as axes, paired ones included, and the axis labels) and that
    agree wherever more than one config was parsed."""
    flats = [flatten(c.config) for c in cells if c.config is not None]
    if not flats:
        return {}
    first = flats[0]
    return {
        k: first[k]
        for k in sorted(first)
        if k not in varied and all(hashable(f.get(k)) == hashable(first[k]) for f in flats[1:])
    }


def _unplanned(cell: CellResult) -> bool:
    """A summary without ``train.steps_planned`` (an older store): its config holds the budget."""
    return not cell.section("train").get("steps_planned")


def load_results(store_dir: str | Path) -> Results:
    """Read every cell of a run store; raise ResultsError (one line) when it is not one.

    ``config.yaml`` is parsed for every cell only when some cell has no recorded axes or the
    cells record different axis keys (values are then read from, or found by diffing, the
    configs); otherwise for the first cell (fixed settings), the cells that did not complete
    (time limits) and those whose summary does not record its planned steps (the budget is
    ``train.max_steps``), which keeps 1,000-cell stores fast.
    """
    store_dir = Path(store_dir)
    if store_dir.exists() and not store_dir.is_dir():
        raise ResultsError(f"{store_dir} is a file; pass the run store folder, e.g. runs/attention")
    if not store_dir.is_dir():
        raise ResultsError(f"no such store directory: {store_dir}")
    try:
        entries = sorted(store_dir.iterdir())
        dirs = [p for p in entries if _is_cell_dir(p)]
    except OSError as exc:
        raise ResultsError(f"cannot read the store {store_dir} ({exc.strerror or exc})") from None
    if not dirs:
        what = "empty store" if not entries else "not a run store"
        raise ResultsError(
            f"{what}: {store_dir} has no cell directories "
            f"(expected {store_dir}/<cell-id>/{SUMMARY_FILE}); run the matrix first"
        )
    meta = _read_json(store_dir / MATRIX_FILE)
    cells = [_load_cell(p) for p in dirs]
    parse_all = any(not c.axes for c in cells) or len({frozenset(c.axes) for c in cells}) > 1
    for i, (c, path) in enumerate(zip(cells, dirs, strict=True)):
        if parse_all or i == 0 or c.outcome != "completed" or _unplanned(c):
            config = _read_yaml(path / CONFIG_FILE)
            cells[i] = replace(c, config=config if isinstance(config, dict) else None)
    varied = set().union(*(c.axes for c in cells))  # dotted keys, before pairs are folded
    cells, meta = _merge_paired(cells, meta)
    cells, axes = _fill_axes(cells, meta)
    paired = meta.get("paired") if isinstance(meta.get("paired"), dict) else {}
    varied |= set(axes) | {
        str(k) for keys in paired.values() if isinstance(keys, list) for k in keys
    }
    values = _axis_values(cells, axes, meta)
    rank = {k: {hashable(v): i for i, v in enumerate(vs)} for k, vs in values.items()}
    cells.sort(
        key=lambda c: ([rank[k][hashable(c.axes.get(k))] for k in axes], c.repeat, c.cell_id)
    )
    infos = [_read_json(p / CELL_FILE) for p in dirs[:1]]
    name = str(meta.get("name") or (infos[0].get("matrix") if infos else None) or store_dir.name)
    return Results(
        name=name,
        description=str(meta.get("description") or ""),
        cells=tuple(cells),
        axes=tuple(axes),
        axis_values=values,
        fixed=_fixed(cells, varied),
        meta=meta,
    )
