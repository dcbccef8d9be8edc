"""Per-cell charts: exact match with its interval, and peak memory against the budget.

Both split the cells into panels by one axis (``plot_style.facets``: the panel's title names the
value, the rows name the rest), draw each cell in its configuration's colour, and size the
figure from the number of rows and the longest label. Large stores show at most ``MAX_ROWS``
cells (the markdown caption says which).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from reports.plot_style import (
    Styles,
    facet_axis,
    facets,
    fit_title,
    new_figure,
    row_labels,
    styles,
)
from reports.plot_style import text_width as label_inches
from reports.results import CellResult, Results
from reports.stats import wilson_interval
from reports.tables import peak

MAX_ROWS = 25
"""Cells shown in the per-cell accuracy and memory charts."""
ROW_IN = 0.24
"""Height of one cell's row, in inches."""
BAD = "#c0392b"
"""Colour of what went wrong: OOM marks, the memory budget."""


def shown_cells(store: Results, key: str) -> list[CellResult]:
    """Cells drawn in the per-cell chart ``key`` (accuracy or memory), at most MAX_ROWS."""
    cells = list(store.cells)
    if len(cells) <= MAX_ROWS:
        return cells
    if key == "accuracy":
        cells.sort(key=lambda c: -(c.exact()[0] / c.exact()[1]) if c.exact() else 1.0)
    else:
        cells.sort(key=lambda c: -max((v for v in _memory(c)[:3] if v), default=0))
    chosen = {id(c) for c in cells[:MAX_ROWS]}
    return [c for c in store.cells if id(c) in chosen]


def interval(k: int, n: int) -> tuple[float, float, float]:
    """(rate, minus, plus) in percent: the 95% Wilson interval as error-bar lengths, never
    negative (the interval's end can round past the rate at k = 0 or k = n)."""
    lo, hi = wilson_interval(k, n)
    rate = k / n
    return 100 * rate, max(0.0, 100 * (rate - lo)), max(0.0, 100 * (hi - rate))


def _why(cell: CellResult) -> str:
    if cell.outcome == "oom":
        return f"OOM ({cell.section('oom').get('phase') or '?'})"
    return "not run" if cell.outcome == "incomplete" else cell.outcome


def _panels(
    store: Results, cells: list[CellResult], title: str, legend: list[Any]
) -> tuple[Figure, list[tuple[Any, list[CellResult], list[str]]], Styles]:
    """A figure with one panel per facet, each with its cells' row labels set."""
    style = styles(store)
    groups = facets(store, cells)
    names = row_labels(store, facet_axis(store, cells))
    labelled = [(g, [style.cell_label(c, names[style.key(c)]) for c in g]) for _, g in groups]
    every = [t for _, ls in labelled for t in ls] + [t for t, _ in groups]
    height = 0.9 + 0.35 * len(groups) + ROW_IN * len(cells) + (0.3 if legend else 0)
    fig = new_figure(4.8 + label_inches(every), height)
    axs = fig.subplots(
        len(groups),
        1,
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [max(len(g), 1) + 0.6 for _, g in groups]},
    )[:, 0]
    out = []
    for ax, (name, group), (_, labels) in zip(axs, groups, labelled, strict=True):
        ax.set_yticks(range(len(group)), labels)
        ax.set_ylim(len(group) - 0.4, -0.6)
        ax.tick_params(axis="y", length=0)
        if name:
            ax.set_title(name)
        out.append((ax, group, labels))
    fig.suptitle(fit_title(title, fig.get_figwidth()))
    if legend:
        fig.legend(handles=legend, loc="outside lower center", ncols=len(legend), frameon=False)
    return fig, out, style


def accuracy_figure(store: Results) -> Figure | None:
    """Exact match per cell with its 95% Wilson interval; unscored cells say why."""
    cells = shown_cells(store, "accuracy")
    if not any(c.exact() for c in cells):
        return None
    fig, panels, style = _panels(store, cells, "Exact match per cell (95% Wilson interval)", [])
    for ax, group, _ in panels:
        for y, c in enumerate(group):
            if c.exact() is None:
                ax.plot([0], [y], marker="x", color=BAD, linestyle="none")
                ax.annotate(
                    _why(c),
                    (0, y),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    color=BAD,
                )
                continue
            rate, minus, plus = interval(*c.exact())
            bars = ax.errorbar(
                [rate],
                [y],
                xerr=[[minus], [plus]],
                fmt="o",
                color=style.color(c),
                capsize=3,
                markersize=4,
            )
            for artist in bars.get_children():
                artist.set_gid(style.label(c))
            right = rate + plus < 80
            ax.annotate(
                f"{rate:.1f}%",
                (rate + plus if right else rate - minus, y),
                xytext=(5 if right else -5, 0),
                textcoords="offset points",
                va="center",
                ha="left" if right else "right",
            )
        ax.grid(axis="x", alpha=0.3)
    panels[-1][0].set(xlim=(-2, 102), xlabel="exact match on the held-out split, %")
    return fig


def _memory(cell: CellResult) -> tuple[int | None, int | None, int | None, int | None]:
    """(train peak, eval peak, OOM in-use bytes, budget) of a cell, in bytes."""
    oom = cell.section("oom")
    budget = cell.section("memory").get("budget_bytes") or oom.get("budget_bytes")
    used = oom.get("in_use_bytes") if cell.outcome == "oom" else None
    return peak(cell, "train"), peak(cell, "eval"), used, budget


def _unit(values: Sequence[int | None]) -> tuple[float, str]:
    top = max((v for v in values if v), default=0)
    return (2**30, "GiB") if top >= 2**30 else (2**20, "MiB")


MEMORY_LEGEND = [
    Patch(facecolor="0.35", label="train peak"),
    Patch(facecolor="0.35", alpha=0.4, label="eval peak"),
    Line2D([], [], color=BAD, linestyle="--", label="budget"),
    Line2D([], [], color=BAD, marker="x", linestyle="none", label="OOM: memory in use"),
]


def memory_figure(store: Results) -> Figure | None:
    """Train and eval peak memory per cell (its colour), the budget, OOM cells at their usage."""
    cells = shown_cells(store, "memory")
    mem = [_memory(c) for c in cells]
    if not any(any(m[:3]) for m in mem):
        return None
    scale, unit = _unit([v for m in mem for v in m])
    by_cell = {id(c): m for c, m in zip(cells, mem, strict=True)}
    used = [
        any(m[0] for m in mem),
        any(m[1] for m in mem),
        any(m[3] for m in mem),
        any(m[2] for m in mem),
    ]
    legend = [h for h, u in zip(MEMORY_LEGEND, used, strict=True) if u]
    fig, panels, style = _panels(store, cells, "Peak memory per cell", legend)
    top = max(v for m in mem for v in m if v) / scale
    for ax, group, _ in panels:
        for y, c in enumerate(group):
            train, evl, used, budget = (v / scale if v else None for v in by_cell[id(c)])
            color, gid = style.color(c), style.label(c)
            for value, dy, alpha in ((train, -0.18, 1.0), (evl, 0.18, 0.4)):
                if value:
                    ax.barh(y + dy, value, height=0.34, color=color, alpha=alpha, gid=gid)
            if budget:
                ax.plot([budget, budget], [y - 0.45, y + 0.45], color=BAD, linestyle="--")
            if used:
                ax.plot([used], [y], marker="x", color=BAD, linestyle="none")
            if c.outcome == "oom" or not (train or evl):
                ax.annotate(
                    _why(c),
                    (0, y),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    color=BAD,
                )
        ax.grid(axis="x", alpha=0.3)
    panels[-1][0].set(xlim=(0, 1.08 * top), xlabel=f"peak memory, {unit}")
    return fig


FIGURES: dict[str, Callable[[Results], Figure | None]] = {
    "accuracy": accuracy_figure,
    "memory": memory_figure,
}
