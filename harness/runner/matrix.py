"""Experiment matrices: read a YAML file, validate it and every cell it expands to, expand.

The format is documented for users in ``experiments/README.md``. In short::

    name: attention                       # cells go to runs/<name>/<cell-id>/
    base: {train: {max_steps: 200}}       # a cell config (harness.contracts.config.CellConfig)
    matrix:                               # axes; their cartesian product is the grid
      attention.mode: [causal, prefix_bidirectional]
      batch:                              # a paired axis: mappings whose keys vary together
        - {train.micro_batch: 8, train.grad_accum: 4}
        - {train.micro_batch: 4, train.grad_accum: 8}
    exclude: [{attention.mode: causal, attention.impl: eager_dense}]
    include: [{attention.mode: causal, train.lr: 3.0e-3}]
    repeats: 2                            # or seeds: [0, 1]
    tracking: {mode: offline}             # W&B (harness/runner/tracking.py); not in cell ids
    workers: auto                         # cells at once locally (--workers wins); not in ids
    executor: slurm                       # local (default), ray or slurm (--executor wins)
    slurm: {partition: gpu, time_limit: "2:00:00"}  # harness/runner/slurm_config.py

Expansion order: grid (first axis slowest), ``exclude``, ``include`` (GitHub Actions rules: an
entry whose axis values match grid cells adds its other keys to them, otherwise it is a new
cell), repeats/seeds, then ``--set`` overrides (they win over everything in the file). Cells with
the same resolved config are merged; a cell's id is ``config_hash`` of its resolved config.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.contracts.config import CELL_KEYS, CellConfig, ConfigError, to_dict
from harness.contracts.identity import config_hash
from harness.contracts.keys import get_dotted, unknown_key
from harness.contracts.sizes import resolve_sizes, unset_sizes
from harness.contracts.yaml_io import parse_yaml, read_yaml
from harness.runner.slurm_config import SlurmConfig, parse_executor, parse_slurm
from harness.runner.tracking import TrackingConfig, parse_tracking

TOP_KEYS = (
    "name",
    "description",
    "base",
    "matrix",
    "include",
    "exclude",
    "repeats",
    "seeds",
    "tracking",
    "workers",
    "executor",
    "slurm",
)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Cell:
    """One expanded cell: its identity, resolved config and what distinguishes it."""

    cell_id: str
    """``config_hash`` of ``config``."""
    config: dict[str, Any]
    """Resolved config, every field present (equal to ``to_dict(parse_cell_config(config))``)."""
    axes: dict[str, Any]
    """Dotted key -> value for the keys this cell sets beyond ``base`` (display, cell.json)."""
    repeat: int
    """Repeat index (0 unless ``repeats``/``seeds`` is used)."""
    index: int
    """Position in the expanded matrix."""

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.axes.items()) or "(base)"


@dataclass
class Matrix:
    """A validated, expanded matrix."""

    name: str
    description: str
    source: str
    cells: list[Cell]
    duplicates: int = 0
    """Cells dropped because another cell had the same resolved config."""
    paired: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Paired axes: label -> the dotted keys that vary together (one logical axis)."""
    tracking: TrackingConfig = dataclasses.field(default_factory=TrackingConfig)
    """The ``tracking:`` section (W&B); not part of any cell's config or id."""
    workers: int | str = 1
    """The ``workers:`` key: cells run at once by the local executor unless ``--workers`` says
    otherwise; ``auto`` is resolved at run time (``harness.runner.workers.auto_workers``)."""
    executor: str = "local"
    """The ``executor:`` key (``--executor`` wins); not part of any cell's id."""
    slurm: SlurmConfig = dataclasses.field(default_factory=SlurmConfig)
    """The ``slurm:`` section: what each cell's Slurm job asks for."""


# --------------------------------------------------------------------------- values


def parse_assignment(text: str, flag: str) -> tuple[str, Any]:
    """``"train.lr=1e-3"`` -> ``("train.lr", 0.001)``; values are YAML. Raise ConfigError."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError([f"{flag} {text!r}: expected KEY=VALUE, e.g. {flag} train.lr=1e-3"], flag)
    problems: list[str] = []
    value = parse_yaml(raw, problems) if raw.strip() else ""
    return key.strip(), raw if problems else value


# --------------------------------------------------------------------------- loading


def load_matrix(path: str | Path, overrides: list[tuple[str, Any]] | None = None) -> Matrix:
    """Read, validate and expand a matrix file; raise ConfigError listing every problem."""
    source = str(path)
    errors: list[str] = []
    raw = read_yaml(path, errors)
    if errors:
        raise ConfigError(errors, source)
    return build_matrix(raw, source, overrides or [], default_name=Path(path).stem)


def build_matrix(
    raw: Any, source: str, overrides: list[tuple[str, Any]], default_name: str = "matrix"
) -> Matrix:
    """Validate a parsed matrix mapping and expand it (see the module docstring)."""
    if not isinstance(raw, dict):
        kind = "an empty file" if raw is None else type(raw).__name__
        raise ConfigError([f"expected a mapping with `base` and `matrix`, got {kind}"], source)
    errors: list[str] = []
    errors += [
        unknown_key(str(k), TOP_KEYS, what="top-level key") for k in raw if k not in TOP_KEYS
    ]
    name = _parse_name(raw.get("name", default_name), errors)
    base = _parse_base(raw.get("base"), errors)
    axes = _parse_axes(raw.get("matrix"), errors)
    exclude = _parse_entries(raw.get("exclude"), "exclude", errors)
    include = _parse_entries(raw.get("include"), "include", errors)
    seeds = _parse_repeats(raw.get("repeats"), raw.get("seeds"), errors)
    tracking = parse_tracking(raw.get("tracking"), errors)
    workers = _parse_workers(raw.get("workers", 1), errors)
    executor = parse_executor(raw.get("executor"), errors)
    slurm = parse_slurm(raw.get("slurm"), errors)
    fixed = {k: CELL_KEYS.check(k, v, "--set ", errors) for k, v in overrides}
    if not axes and not include and not errors:
        errors.append(
            "the matrix is empty: add an axis under `matrix:` (e.g. `seed: [0]`) "
            "or an `include:` entry"
        )
    if errors:
        raise ConfigError(errors, source)
    base_cfg = _resolve(unset_sizes(to_dict(CellConfig())), base)  # data.style sizes them
    assigns = _expand(axes, exclude, include, base_cfg)
    if not assigns:
        raise ConfigError(["the matrix expands to 0 cells (every combination is excluded)"], source)
    cells, duplicates, cell_errors = _make_cells(assigns, seeds, fixed, base_cfg)
    if cell_errors:
        raise ConfigError(cell_errors, source)
    desc = str(raw.get("description") or "")
    labels = [str(label) for label in raw.get("matrix") or {}]
    paired = {
        lab: list(axis[0]) for lab, axis in zip(labels, axes, strict=True) if lab not in axis[0]
    }
    return Matrix(name, desc, source, cells, duplicates, paired, tracking, workers, executor, slurm)


def _parse_name(name: Any, errors: list[str]) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors.append(f"`name`: {name!r} is not a valid folder name (letters, digits, `-_.`)")
        return "invalid"
    return name


def _parse_workers(workers: Any, errors: list[str]) -> int | str:
    if workers == "auto" or (type(workers) is int and 1 <= workers <= 1024):
        return workers
    errors.append(f"`workers`: expected `auto` or an integer from 1 to 1024, got {workers!r}")
    return 1


def _parse_base(base: Any, errors: list[str]) -> dict[str, Any]:
    if base is None:
        return {}
    if not isinstance(base, dict):
        errors.append(f"`base`: expected a mapping (a cell config), got {base!r}")
        return {}
    return CELL_KEYS.flatten_checked(base, "base: ", errors)


Axis = list[dict[str, Any]]
"""One axis: its options, each a {dotted key: value} mapping (one key unless paired)."""


def _parse_axes(matrix: Any, errors: list[str]) -> list[Axis]:
    if matrix is None:
        return []
    if not isinstance(matrix, dict):
        errors.append(
            f"`matrix`: expected a mapping of axes (dotted key -> values), got {matrix!r}"
        )
        return []
    axes: list[Axis] = []
    seen: dict[str, str] = {}
    for label, values in matrix.items():
        where = f"matrix.{label}: "
        if not isinstance(values, list) or not values:
            errors.append(f"{where}expected a non-empty list of values, got {values!r}")
            continue
        paired = [isinstance(v, dict) for v in values]
        if any(paired) and not all(paired):
            errors.append(f"{where}mixes mappings (a paired axis) and plain values")
            continue
        if all(paired):
            options = [CELL_KEYS.flatten_checked(v, where, errors) for v in values]
            if len({frozenset(o) for o in options}) > 1:
                errors.append(f"{where}every option of a paired axis must set the same keys")
        else:
            options = [
                {str(label): CELL_KEYS.check(str(label), v, "matrix: ", errors)} for v in values
            ]
        for key in options[0]:
            if key in seen:
                errors.append(f"{where}`{key}` is already varied by axis `{seen[key]}`")
            seen[key] = str(label)
        axes.append(options)
    return axes


def _parse_entries(entries: Any, what: str, errors: list[str]) -> list[dict[str, Any]]:
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        errors.append(f"`{what}`: expected a list of mappings (dotted key -> value)")
        return []
    return [CELL_KEYS.flatten_checked(e, f"{what}[{i}]: ", errors) for i, e in enumerate(entries)]


def _parse_repeats(repeats: Any, seeds: Any, errors: list[str]) -> list[int] | int:
    """Return explicit seeds, or the repeat count (seeds derived per cell: its seed + i)."""
    if repeats is not None and seeds is not None:
        errors.append("give either `repeats` (seeds = the cell's seed + i) or `seeds`, not both")
    if seeds is not None:
        ok = isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)
        if not ok or len(set(seeds)) != len(seeds):
            errors.append(f"`seeds`: expected a non-empty list of distinct integers, got {seeds!r}")
            return 1
        return list(seeds)
    if repeats is None:
        return 1
    if type(repeats) is not int or repeats < 1:
        errors.append(f"`repeats`: expected an integer >= 1, got {repeats!r}")
        return 1
    return repeats


# --------------------------------------------------------------------------- expansion


def _expand(
    axes: list[Axis], exclude: list[dict[str, Any]], include: list[dict[str, Any]], base: dict
) -> list[dict[str, Any]]:
    """Grid, minus exclude, plus include -> one assignment mapping per cell."""
    grid: list[dict[str, Any]] = []
    if axes:
        for combo in itertools.product(*axes):
            assign: dict[str, Any] = {}
            for option in combo:
                assign.update(option)
            grid.append(assign)

    def value(assign: dict[str, Any], key: str) -> Any:
        return assign[key] if key in assign else get_dotted(base, key)

    grid = [
        a for a in grid if not any(all(value(a, k) == v for k, v in e.items()) for e in exclude)
    ]
    axis_keys = {k for axis in axes for k in axis[0]}
    extra: list[dict[str, Any]] = []
    for entry in include:
        on_axes = {k: v for k, v in entry.items() if k in axis_keys}
        matched = [a for a in grid if all(a.get(k) == v for k, v in on_axes.items())]
        if not matched:
            extra.append(dict(entry))
        for a in matched:
            a.update({k: v for k, v in entry.items() if k not in axis_keys})
    return grid + extra


def _make_cells(
    assigns: list[dict[str, Any]], seeds: list[int] | int, fixed: dict[str, Any], base: dict
) -> tuple[list[Cell], int, list[str]]:
    cells: list[Cell] = []
    ids: set[str] = set()
    problems: dict[str, list[str]] = {}
    duplicates = 0
    for assign in assigns:
        cell_seed = assign.get("seed", base["seed"])
        seed_list = seeds if isinstance(seeds, list) else [cell_seed + i for i in range(seeds)]
        for repeat, seed in enumerate(seed_list):
            axes = dict(assign) if len(seed_list) == 1 else {**assign, "seed": seed}
            axes = {k: fixed.get(k, v) for k, v in axes.items()}
            config = resolve_sizes(_resolve(base, {**axes, **fixed}))
            try:
                _build_checked(CellConfig, config)
            except ConfigError as exc:
                label = Cell("", {}, axes, repeat, len(cells)).label
                for msg in exc.errors:
                    problems.setdefault(msg, []).append(label)
                continue
            cell_id = config_hash(config)
            if cell_id in ids:
                duplicates += 1
                continue
            ids.add(cell_id)
            cells.append(Cell(cell_id, config, axes, repeat, len(cells)))
    errors = []
    for msg, labels in problems.items():
        more = f" (and {len(labels) - 1} more cell(s))" if len(labels) > 1 else ""
        errors.append(f"cell {{{labels[0]}}}: {msg}{more}")
    return cells, duplicates, errors


def _resolve(base: dict[str, Any], assign: dict[str, Any]) -> dict[str, Any]:
    """Copy-on-write ``base`` with dotted keys set (only the touched sections are copied)."""
    out = dict(base)
    copied: set[tuple[str, ...]] = set()
    for key, value in assign.items():
        *parents, leaf = key.split(".")
        node, path = out, ()
        for part in parents:
            path = (*path, part)
            if path not in copied:
                node[part] = dict(node[part])
                copied.add(path)
            node = node[part]
        node[leaf] = value
    return out


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, type | None], ...]:
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, hints[f.name] if dataclasses.is_dataclass(hints[f.name]) else None)
        for f in dataclasses.fields(cls)
    )


def _build_checked(cls: type, data: dict[str, Any]) -> Any:
    """Build a config from values already type-checked; runs the cross-field checks."""
    kwargs = {n: _build_checked(sub, data[n]) if sub else data[n] for n, sub in _fields(cls)}
    return cls(**kwargs)


def select(cells: list[Cell], only: list[tuple[str, Any]]) -> list[Cell]:
    """Keep cells matching every ``--only`` key (several values for one key: any of them)."""
    wanted: dict[str, list[Any]] = {}
    errors: list[str] = []
    for key, value in only:
        wanted.setdefault(key, []).append(CELL_KEYS.check(key, value, "--only ", errors))
    if errors:
        raise ConfigError(errors, "--only")
    return [c for c in cells if all(get_dotted(c.config, k) in vs for k, vs in wanted.items())]
