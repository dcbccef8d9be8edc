"""The page's data: one JSON object computed from ``load_results`` by the report's own functions.

Findings and recommendations are ``reports.findings``' (the markdown's words, levels and tests);
each finding is linked to the cells it is about: cells it names, or for a comparison along an
axis the cells of the configuration pairs (``reports.comparisons.axis_pairs``) whose other
settings the text names. Pooled accuracy per axis value is the sum of k and n over the scored
cells with that value and its 95% Wilson interval, as the markdown's sweep plot draws it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from reports import fmt
from reports.comparisons import axis_pairs, build_configs, sweep_axes
from reports.findings import Finding, findings, recommendations
from reports.html.cells import STATUSES, cell_record
from reports.html.samples import MAX_IMAGES, images, sample_table
from reports.markdown import SECTIONS
from reports.results import Results, hashable
from reports.seed_level import over_seeds, seed_points
from reports.stats import wilson_interval
from reports.wording import FINDINGS_RULE

_NAMED = re.compile(r"`([^`]+)`")


def _linked(store: Results, finding: Finding, pairs: dict[str, list]) -> list[str]:
    """Ids of the cells a finding is about (store order)."""
    ids = {c.cell_id for c in store.cells}
    named = {m for m in _NAMED.findall(finding.text) if m in ids}
    if finding.axis and finding.kind in ("accuracy", "not_comparable", "confounded", "memory"):
        for a, b in pairs.get(finding.axis, []):
            where = a.label(skip=finding.axis)
            values = (fmt.value(a.values[finding.axis]), fmt.value(b.values[finding.axis]))
            if (where == "all cells" or where in finding.text) and all(
                v in finding.text for v in values
            ):
                scored = finding.kind == "accuracy"  # the test rests on the scored runs
                named |= {c.cell_id for c in (*a.cells, *b.cells) if c.exact() or not scored}
    return [c.cell_id for c in store.cells if c.cell_id in named]


def _findings(store: Results) -> tuple[list[dict[str, Any]], list[str]]:
    found = findings(store)
    configs = build_configs(store)
    axes = {f.axis for f in found if f.axis}
    pairs = {axis: list(axis_pairs(store, configs, axis)) for axis in sorted(axes)}
    titles = dict(SECTIONS)
    out = [
        {
            "kind": f.kind,
            "section": titles.get(f.kind, f.kind),
            "text": f.text,
            "axis": f.axis,
            "significant": f.significant,
            "level": ("significant" if f.significant else "not significant")
            if f.kind == "accuracy"
            else "",
            "alert": f.alert,
            "p_value": f.p_value,
            "runs": f.runs,
            "cells": _linked(store, f, pairs),
        }
        for f in found
    ]
    return out, recommendations(found, store)


def _interval(k: int, n: int) -> dict[str, float]:
    lo, hi = wilson_interval(k, n)
    return {"rate": k / n, "lo": lo, "hi": hi, "k": k, "n": n}


def _seed_level(store: Results, axis: str, count: int) -> list[dict[str, Any] | None]:
    """Per value position: its seeds' exact match and their mean with the 95% t interval over
    seeds, as rates (0-1), or None where the value has no scored cell."""
    points = seed_points(store, axis)
    return [
        {
            "rate": p.mean / 100,
            "lo": p.lo / 100,
            "hi": p.hi / 100,
            "seeds": [v / 100 for v in p.seeds],
        }
        if (p := points.get(x))
        else None
        for x in range(count)
    ]


def accuracy_by_axis(store: Results) -> dict[str, dict[str, Any]]:
    """Per swept axis and value: pooled k/n with its interval (over samples), with seeds the
    seed-level point (each seed, their mean and 95% t interval over seeds: what sweeps.png
    draws), and per setting of the other axes the single runs (seeds as points)."""
    out: dict[str, dict[str, Any]] = {}
    configs = build_configs(store)
    seeded = over_seeds(store)
    for axis in sweep_axes(store):
        values = [fmt.value(v) for v in store.axis_values[axis]]
        pos = {hashable(v): i for i, v in enumerate(store.axis_values[axis])}
        pooled = [[0, 0] for _ in values]
        series: dict[str, list[dict[str, Any]]] = {}
        for cfg in configs:
            x = pos[hashable(cfg.values[axis])]
            for c in cfg.scored:
                k, n = c.exact()
                pooled[x][0] += k
                pooled[x][1] += n
                series.setdefault(cfg.label(skip=axis), []).append(
                    {"x": x, "rate": k / n, "cell": c.cell_id}
                )
        out[axis] = {
            "values": values,
            "pooled": [_interval(k, n) if n else None for k, n in pooled],
            "seed_level": _seed_level(store, axis, len(values)) if seeded else None,
            "series": [{"label": lab, "points": pts} for lab, pts in sorted(series.items())],
        }
    return out


def _progress(store: Results) -> dict[str, int]:
    """Cells finished (a summary), damaged (a file that does not validate), and the rest: running
    or not started (a page refreshed while the matrix runs)."""
    done = sum(c.summary is not None for c in store.cells)
    damaged = sum(bool(c.problem) for c in store.cells)
    return {
        "cells": len(store.cells),
        "finished": done,
        "damaged": damaged,
        "unfinished": len(store.cells) - done - damaged,
    }


def build_payload(
    store: Results,
    store_dir: Path,
    *,
    cell_dirs: dict[str, Path] | None = None,
    found: tuple[list[dict[str, Any]], list[str]] | None = None,
) -> dict[str, Any]:
    """The JSON object the page renders (same results, same object). ``cell_dirs``: cell id ->
    its folder, when not ``store_dir/<id>``; ``found``: (findings, recommendations) when not the
    store's own (a before/after page)."""
    found, recs = found if found is not None else _findings(store)
    dirs = cell_dirs or {}
    samples, preds = sample_table(store)
    return {
        "name": store.name,
        "description": store.description,
        "axes": list(store.axes),
        "axis_values": {k: [fmt.value(v) for v in vs] for k, vs in store.axis_values.items()},
        "fixed": {k: fmt.value(v) for k, v in store.fixed.items()},
        "statuses": list(STATUSES),
        "progress": _progress(store),
        "cells": [
            cell_record(store, c, dirs.get(c.cell_id, store_dir / c.cell_id)) for c in store.cells
        ],
        "accuracy": accuracy_by_axis(store),
        "findings": found,
        "findings_note": f"{FINDINGS_RULE} Click a cell to see the cells of a finding in the "
        "results table.",
        "recommendations": recs,
        "samples": samples,
        "predictions": preds,
        "images": images(store),
        "max_images": MAX_IMAGES,
    }
