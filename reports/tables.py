"""Markdown tables: matrix axes, results per cell, training metrics, repeats, errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from reports import fmt
from reports.results import ERROR_KINDS, CellResult, Results, hashable
from reports.stats import mean_std, wilson_interval


def md_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> str:
    """A pipe table; columns listed in ``right`` are right-aligned."""
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def varying(store: Results, cells: Sequence[CellResult]) -> list[str]:
    """The store's axes that take more than one value among ``cells``."""
    return [k for k in store.axes if len({hashable(c.axes.get(k)) for c in cells}) > 1]


def exact_text(cell: CellResult) -> tuple[str, str]:
    """("k/n (p%)", "[lo%, hi%]") for a scored cell, dashes otherwise."""
    kn = cell.exact()
    if kn is None:
        return (fmt.DASH, fmt.DASH)
    k, n = kn
    lo, hi = wilson_interval(k, n)
    return (f"{k}/{n} ({fmt.pct(k / n)})", f"[{fmt.pct(lo)}, {fmt.pct(hi)}]")


def peak(cell: CellResult, phase: str) -> Any:
    """Peak bytes of a phase (``train`` / ``eval``) from the summary, else None."""
    section = cell.section("memory").get(phase)
    return section.get("peak_bytes") if isinstance(section, dict) else None


def axes_table(store: Results) -> str:
    """One row per axis: its values and how many cells took each."""
    rows = []
    for key in store.axes:
        counts = Counter(hashable(c.axes.get(key)) for c in store.cells)
        vals = ", ".join(
            f"`{fmt.value(v)}` ({counts[hashable(v)]})" for v in store.axis_values[key]
        )
        rows.append([f"`{key}`", vals])
    return md_table(["axis", "values (cells)"], rows)


def results_table(store: Results) -> str:
    """A row per cell: varying axes, outcome, exact match with 95 % CI, memory, speed, time."""
    cells = list(store.cells)
    if not cells:
        return "_No cells._"
    axes = varying(store, cells)
    repeats = any(c.repeat for c in cells)
    scored = any(fmt.scored_on(c) for c in cells)
    headers = ["cell", *[f"`{k}`" for k in axes]] + (["repeat"] if repeats else [])
    headers += [
        "outcome",
        "exact match",
        "95% CI",
        *(["scored on"] if scored else []),
        "token acc",
        "CER",
        "peak train",
        "peak eval",
        "steps/s",
        "wall",
    ]
    rows = []
    for c in cells:
        m, t = c.section("metrics"), c.section("train")
        row = [f"`{c.cell_id}`", *[fmt.cell_text(fmt.value(c.axes.get(k))) for k in axes]]
        row += [str(c.repeat)] if repeats else []
        row += [
            fmt.outcome(c),
            *exact_text(c),
            *(
                [fmt.scored_on(c) or ("held-out test split" if c.exact() else fmt.DASH)]
                if scored
                else []
            ),
            fmt.pct(m.get("token_accuracy")),
            fmt.num(m.get("cer"), 3),
            fmt.nbytes(peak(c, "train")),
            fmt.nbytes(peak(c, "eval")),
            fmt.num(t.get("steps_per_s")),
            fmt.seconds(c.section("timings").get("wall_s")),
        ]
        rows.append(row)
    return md_table(headers, rows, right=range(headers.index("exact match"), len(headers)))


def _first_last(cell: CellResult, key: str, index: int, as_pct: bool) -> str:
    t = cell.section("train")
    first, last = t.get(f"first_{key}"), t.get(f"last_{key}")
    if first is None and cell.curve:
        first, last = cell.curve[0][index], cell.curve[-1][index]
    render = fmt.pct if as_pct else fmt.num
    if first is None and last is None:
        return fmt.DASH
    return f"{render(first)} → {render(last)}"


def training_table(store: Results) -> str:
    """Loss and token accuracy first -> last, steps, throughput, per cell that trained."""
    cells = [c for c in store.cells if c.section("train").get("steps") is not None or c.curve]
    if not cells:
        return "_No cell recorded training metrics._"
    axes = varying(store, store.cells)
    headers = [
        "cell",
        *[f"`{k}`" for k in axes],
        "steps",
        "loss first → last",
        "token acc first → last",
        "tokens/s",
        "train time",
    ]
    rows = []
    for c in cells:
        t = c.section("train")
        steps = t.get("steps", c.curve[-1][0] if c.curve else None)
        rows.append(
            [
                f"`{c.cell_id}`",
                *[fmt.cell_text(fmt.value(c.axes.get(k))) for k in axes],
                str(steps) if steps is not None else fmt.DASH,
                _first_last(c, "loss", 1, False),
                _first_last(c, "token_accuracy", 2, True),
                fmt.num(t.get("tokens_per_s"), 0),
                fmt.seconds(c.section("timings").get("train_s")),
            ]
        )
    return md_table(headers, rows, right=range(len(axes) + 1, len(headers)))


def configurations(store: Results) -> dict[tuple, list[CellResult]]:
    """Cells grouped by configuration (axes without repeat keys), in store order."""
    groups: dict[tuple, list[CellResult]] = {}
    for c in store.cells:
        groups.setdefault(c.config_key, []).append(c)
    return groups


def repeats_table(store: Results) -> str | None:
    """Mean +/- std (and the values) of exact match per configuration with >1 scored repeat."""
    rows = []
    for key, cells in configurations(store).items():
        scored = [c for c in cells if c.exact()]
        if len(cells) < 2:
            continue
        accs = [k / n for k, n in (c.exact() for c in scored)]
        mean, std = mean_std(accs)
        values = ", ".join(fmt.pct(a) for a in accs) or fmt.DASH
        rows.append(
            [
                fmt.cell_text(fmt.assignment(key), 120),
                f"{len(scored)}/{len(cells)}",
                f"{fmt.pct(mean)} ± {fmt.pct(std)}" if accs else fmt.DASH,
                values,
            ]
        )
    if not rows:
        return None
    return md_table(["configuration", "scored / repeats", "exact match mean ± std", "values"], rows)


def error_counts(cells: Sequence[CellResult]) -> Counter:
    """Error kinds over the wrong predictions of ``cells`` (plus `wrong` and `wrong length`)."""
    total: Counter = Counter()
    for c in cells:
        total.update(c.errors)
    return total


def errors_table(store: Results) -> str | None:
    """Error kinds per configuration, pooled over repeats, from predictions.jsonl."""
    rows = []
    for key, cells in configurations(store).items():
        counts = error_counts(cells)
        total = sum(len(c.predictions) for c in cells)
        if not total:
            continue
        wrong = counts["wrong"]
        rows.append(
            [
                fmt.cell_text(fmt.assignment(key), 120),
                f"{wrong}/{total}",
                *[str(counts[k]) for k in ERROR_KINDS],
                str(counts["wrong length"]),
            ]
        )
    if not rows:
        return None
    headers = ["configuration", "wrong", *ERROR_KINDS, "wrong length"]
    return md_table(headers, rows, right=range(1, len(headers)))


def settings_lines(store: Results) -> list[str]:
    """Fixed settings as ``- `key`: value`` lines (sorted)."""
    return [f"- `{k}`: `{fmt.cell_text(fmt.value(v), 200)}`" for k, v in store.fixed.items()]
