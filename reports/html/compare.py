"""The before/after page (``python -m reports compare BEFORE AFTER --html``): the store page's
machinery over both stores at once.

The two stores become one with an added axis ``store`` (``before`` / ``after``) and cell ids
``before/<id>`` and ``after/<id>``, so that the table, curves, accuracy, grid and memory views
show both side by side; the findings are the comparison's own verdicts
(``reports.before_after.match_cells`` and ``verdict``: the same tests and words as the markdown),
each linked to its two cells, and the disagreement view starts on the first matched pair:
the per-sample differences of one cell before and after.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.contracts.store_files import atomic_write_text
from reports import fmt
from reports.before_after import MEMORY_TOLERANCE, match_cells, render_comparison, verdict
from reports.html.page import render_page
from reports.html.payload import build_payload
from reports.results import Results, hashable, load_results, sort_key

STORE_AXIS = "store"
SIDES = ("before", "after")


def combine(a: Results, b: Results) -> Results:
    """One store holding both: every cell tagged with its side and renamed ``side/<id>``."""
    cells = [
        replace(c, cell_id=f"{side}/{c.cell_id}", axes={STORE_AXIS: side, **c.axes})
        for side, store in zip(SIDES, (a, b), strict=True)
        for c in store.cells
    ]
    axes = [STORE_AXIS, *dict.fromkeys([*a.axes, *b.axes])]
    values: dict[str, tuple[Any, ...]] = {STORE_AXIS: SIDES}
    for key in axes[1:]:
        seen = {hashable(c.axes.get(key)): c.axes.get(key) for c in cells}
        listed = [*a.axis_values.get(key, ()), *b.axis_values.get(key, ())]
        ordered = list({hashable(v): v for v in listed}.values())
        rest = [v for h, v in seen.items() if h not in {hashable(x) for x in ordered}]
        values[key] = tuple(ordered + sorted(rest, key=sort_key))
    fixed = {
        k: v for k, v in a.fixed.items() if k in b.fixed and hashable(b.fixed[k]) == hashable(v)
    }
    return Results(
        name=f"{a.name} (before) → {b.name} (after)",
        description=f"Before/after comparison of the run stores {a.name} and {b.name}.",
        cells=tuple(cells),
        axes=tuple(axes),
        axis_values=values,
        fixed=fixed,
    )


def _verdicts(a: Results, b: Results) -> tuple[list[dict[str, Any]], list[str]]:
    pairs, only_a, only_b = match_cells(a, b)
    out = []
    for before, after in pairs:
        kind, acc, text = verdict(before, after)
        label = (
            before.cell_id
            if before.cell_id == after.cell_id
            else f"{before.cell_id} → {after.cell_id}"
        )
        out.append(
            {
                "kind": kind,
                "section": "Matched cells",
                "text": f"`{label}`: {text}"
                + (f"; Δ exact match {acc}" if acc != fmt.DASH else ""),
                "axis": STORE_AXIS,
                "significant": kind != "same",
                "level": kind,
                "p_value": None,
                "runs": 1,
                "cells": [f"before/{before.cell_id}", f"after/{after.cell_id}"],
            }
        )
    for side, cells in zip(SIDES, (only_a, only_b), strict=True):
        out += [
            {
                "kind": "unmatched",
                "section": f"Only {side}",
                "text": f"`{c.cell_id}` ({fmt.assignment(c.axes)}): {fmt.outcome(c)}",
                "axis": "",
                "significant": False,
                "p_value": None,
                "runs": 0,
                "cells": [f"{side}/{c.cell_id}"],
            }
            for c in cells
        ]
    summary = render_comparison(a, b).splitlines()[2]  # the markdown's count line
    return out, [summary]


def write_comparison_html(before: str | Path, after: str | Path, out: str | Path) -> Path:
    """Write the before/after page of two stores to ``out``; return the path."""
    a, b = load_results(before), load_results(after)
    store = combine(a, b)
    dirs = {
        f"{side}/{c.cell_id}": Path(root) / c.cell_id
        for side, root, results in zip(SIDES, (before, after), (a, b), strict=True)
        for c in results.cells
    }
    payload = build_payload(store, Path(after), cell_dirs=dirs, found=_verdicts(a, b))
    payload["recommendations_title"] = "Summary"
    payload["findings_note"] = (
        "One verdict per matched cell, as `python -m reports compare` writes it: a regression "
        "when a cell stopped completing, its exact match dropped significantly (McNemar on the "
        "shared samples, else Fisher) or its train peak memory grew by more than "
        f"{MEMORY_TOLERANCE:.0%}."
    )
    scored = [(x, y) for x, y in match_cells(a, b)[0] if x.predictions and y.predictions]
    if scored:  # the disagreement view opens on one cell before and after
        payload["pair"] = [f"before/{scored[0][0].cell_id}", f"after/{scored[0][1].cell_id}"]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render_page(payload))
    return out
