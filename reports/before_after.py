"""Before/after comparison of two runs or stores, for regressions (markdown, pure core).

Cells are matched by cell id, then (for ids that changed, e.g. a config hash) by their axes and
repeat. Accuracy changes are tested (McNemar on shared sample ids, else Fisher); a cell is a
regression when it stopped completing, or its exact match dropped significantly, or its train
peak memory grew by more than ``MEMORY_TOLERANCE``.
"""

from __future__ import annotations

from pathlib import Path

from harness.contracts.store_files import atomic_write_text
from reports import fmt
from reports.comparisons import Config, compare
from reports.results import CellResult, Results, hashable, load_results
from reports.tables import md_table, peak

MEMORY_TOLERANCE = 0.10


def _axes_key(cell: CellResult) -> tuple:
    return (tuple(sorted((k, hashable(v)) for k, v in cell.axes.items())), cell.repeat)


def match_cells(
    a: Results, b: Results
) -> tuple[list[tuple[CellResult, CellResult]], list[CellResult], list[CellResult]]:
    """(matched pairs, only in a, only in b): by id first, then by axes + repeat."""
    b_by_id = {c.cell_id: c for c in b.cells}
    pairs = [(c, b_by_id[c.cell_id]) for c in a.cells if c.cell_id in b_by_id]
    used = {c.cell_id for _, c in pairs}
    rest_a = [c for c in a.cells if c.cell_id not in b_by_id]
    b_by_axes = {_axes_key(c): c for c in b.cells if c.cell_id not in used}
    only_a = []
    for c in rest_a:
        other = b_by_axes.pop(_axes_key(c), None) if c.axes else None
        if other is None:
            only_a.append(c)
        else:
            pairs.append((c, other))
    used |= {c.cell_id for _, c in pairs}
    only_b = [c for c in b.cells if c.cell_id not in used]
    return pairs, only_a, only_b


def verdict(before: CellResult, after: CellResult) -> tuple[str, str, str]:
    """(kind, accuracy text, verdict text); kind is regression / improvement / same."""
    if before.outcome == "completed" and after.outcome != "completed":
        return ("regression", fmt.DASH, f"**regression**: now {fmt.outcome(after)}")
    if before.outcome != "completed" and after.outcome == "completed":
        return ("improvement", fmt.DASH, f"improvement: completes (was {before.outcome})")
    if not (before.exact() and after.exact()):
        change = (
            after.outcome
            if before.outcome == after.outcome
            else (f"{before.outcome} → {after.outcome}")
        )
        return ("same", fmt.DASH, f"not scored ({change})")
    cmp = compare(Config({}, (after,)), Config({}, (before,)))
    acc = f"{fmt.pts(cmp.diff)} ({cmp.test} {fmt.pvalue(cmp.p_value)})"
    kind, text = "same", f"no detectable difference at n = {cmp.n_a}"
    if cmp.significant:
        kind = "regression" if cmp.diff < 0 else "improvement"
        text = "**regression**" if cmp.diff < 0 else "improvement"
    pa, pb = peak(before, "train"), peak(after, "train")
    if pa and pb and pb > pa * (1 + MEMORY_TOLERANCE):
        kind = "regression"
        text += f"; **memory regression** (+{100 * (pb / pa - 1):.0f}%)"
    return (kind, acc, text)


def _row(before: CellResult, after: CellResult) -> tuple[str, list[str]]:
    kind, acc, text = verdict(before, after)
    label = (
        before.cell_id if before.cell_id == after.cell_id else f"{before.cell_id} → {after.cell_id}"
    )
    em = [fmt.DASH if not c.exact() else f"{c.exact()[0]}/{c.exact()[1]}" for c in (before, after)]
    mem = f"{fmt.nbytes(peak(before, 'train'))} → {fmt.nbytes(peak(after, 'train'))}"
    sps = (
        f"{fmt.num(before.section('train').get('steps_per_s'))} → "
        f"{fmt.num(after.section('train').get('steps_per_s'))}"
    )
    where = fmt.cell_text(fmt.assignment(before.axes), 60) if before.axes else ""
    row = [
        f"`{label}`",
        where,
        fmt.outcome(before),
        fmt.outcome(after),
        em[0],
        em[1],
        acc,
        mem,
        sps,
        text,
    ]
    return kind, row


def render_comparison(a: Results, b: Results) -> str:
    """Markdown comparing store ``a`` (before) with store ``b`` (after)."""
    pairs, only_a, only_b = match_cells(a, b)
    rows, kinds = [], []
    for before, after in pairs:
        kind, row = _row(before, after)
        kinds.append(kind)
        rows.append(row)
    out = [f"# Comparison: {a.name} (before) → {b.name} (after)", ""]
    out.append(
        f"{len(pairs)} matched cells: {kinds.count('regression')} regressions, "
        f"{kinds.count('improvement')} improvements, {kinds.count('same')} without a "
        f"detectable change; {len(only_a)} only before, {len(only_b)} only after."
    )
    if rows:
        headers = [
            "cell",
            "axes",
            "before",
            "after",
            "EM before",
            "EM after",
            "Δ exact match",
            "peak train",
            "steps/s",
            "verdict",
        ]
        out += ["", md_table(headers, rows)]
    for title, cells in (("Only before", only_a), ("Only after", only_b)):
        if cells:
            out += ["", f"## {title}", ""]
            out += [f"- `{c.cell_id}` ({fmt.assignment(c.axes)}): {fmt.outcome(c)}" for c in cells]
    return "\n".join(out) + "\n"


def compare_stores(a: str | Path, b: str | Path) -> str:
    """Load two run stores and return the before/after markdown."""
    return render_comparison(load_results(a), load_results(b))


def write_comparison(a: str | Path, b: str | Path, out: str | Path) -> Path:
    """Write ``compare_stores(a, b)`` to ``out``; return the path."""
    out = Path(out)
    atomic_write_text(out, compare_stores(a, b))
    return out
