"""Plots next to the report: loss curves, accuracy with intervals, peak memory, sweeps
(``reports/plot_sweeps.py``), seeds (``reports/plot_seeds.py``).

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch) and
constrained layout, so no text is clipped or overlaps; figure sizes follow the number of cells
and the label lengths. A configuration has one short label and one colour in every plot
(``reports/plot_style.py``). PNGs are written without the ``Software`` metadata key, so the same
store gives the same bytes. Large stores stay fast: the curves of a configuration are one
``LineCollection``, and per-cell charts show at most ``MAX_ROWS`` cells.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from harness.contracts.schema import budget_shortfall
from reports.plot_cells import FIGURES, MAX_ROWS, shown_cells
from reports.plot_seeds import seeds_figure
from reports.plot_style import (
    RC,
    facets,
    fit_title,
    new_figure,
    save,
    setting,
    styles,
    text_width,
)
from reports.plot_sweeps import MAX_PANELS, MAX_SERIES, plot_axes, sweep_figure
from reports.results import CellResult, Results

__all__ = ["MAX_PANELS", "MAX_ROWS", "MAX_SERIES", "make_plots", "plot_axes", "shown_cells"]

MAX_LINES = 8
"""Configurations in one loss panel before the loss plot is split by an axis."""
MAX_LEGEND = 20
"""Configurations named in a legend; above that, colour only hints."""


def samples_per_step(store: Results, cell: CellResult) -> float | None:
    """Training samples per optimizer step (micro_batch x grad_accum): from the summary's
    ``samples_seen / steps``, else the cell's config, else its axes and the store's fixed
    settings; None when unknown."""
    train = cell.section("train")
    seen, steps = train.get("samples_seen"), train.get("steps")
    if isinstance(seen, int) and isinstance(steps, int) and seen > 0 and steps > 0:
        return seen / steps
    mb, ga = setting(store, cell, "train.micro_batch"), setting(store, cell, "train.grad_accum")
    return float(mb * ga) if isinstance(mb, int) and isinstance(ga, int) else None


def _stopped_early(store: Results, cell: CellResult) -> bool:
    """The cell trained fewer steps than planned (a time cap, a crash, a stop)."""
    if cell.outcome == "completed":
        planned = setting(store, cell, "train.max_steps")
        planned = planned if isinstance(planned, int) else None
        return budget_shortfall(cell.summary or {}, planned) is not None
    return cell.outcome != "incomplete"


def _loss_panel(ax: Any, store: Results, cells: list[CellResult], x_of: Any, style: Any) -> None:
    by_config: dict[tuple, list[list[tuple[float, float]]]] = {}
    ends = []
    for c in cells:
        scale = x_of(c)
        if scale is None:
            continue
        seg = [(step * scale, loss) for step, loss, _ in c.curve]
        by_config.setdefault(style.key(c), []).append(seg)
        if _stopped_early(store, c):
            ends.append(seg[-1])
    first = {style.key(c): c for c in cells}
    if len(by_config) <= MAX_LEGEND:  # one collection per configuration, named by its gid
        for key, segs in by_config.items():
            color, label = style.color(first[key]), style.label(first[key])
            lines = LineCollection(segs, colors=[color], linewidths=1.2, gid=label)
            ax.add_collection(lines, autolim=False)
    else:  # one collection for all: hundreds of artists would each rescale the shared axes
        segs = [seg for segs in by_config.values() for seg in segs]
        colors = [style.color(first[k]) for k, segs in by_config.items() for _ in segs]
        ax.add_collection(LineCollection(segs, colors=colors, linewidths=0.8), autolim=False)
    points = [p for segs in by_config.values() for seg in segs for p in seg]
    if points:
        ax.update_datalim(points)
    if ends:
        ax.plot(*zip(*ends, strict=True), marker="x", color="black", linestyle="none")
    ax.autoscale_view()
    ax.grid(alpha=0.3)


def loss_figure(store: Results) -> Figure | None:
    """Training loss against optimizer steps and against samples seen (steps x micro_batch x
    grad_accum), one colour per configuration; split by an axis when there are many."""
    cells = [c for c in store.cells if len(c.curve) > 1]
    if not cells:
        return None
    style = styles(store)
    configs = list(dict.fromkeys(style.key(c) for c in cells))
    groups = facets(store, cells) if len(configs) > MAX_LINES else [("", cells)]
    per_step = {id(c): samples_per_step(store, c) for c in cells}
    columns = [("optimizer step", lambda c: 1.0)]
    if any(per_step.values()):
        columns.append(
            ("samples seen (step × micro_batch × grad_accum)", lambda c: per_step[id(c)])
        )
    first: dict[tuple, CellResult] = {}
    for c in cells:
        first.setdefault(style.key(c), c)
    labels = [style.label(first[k]) for k in configs]
    named = len(configs) <= MAX_LEGEND
    width = 4.6 * len(columns) + 0.4
    ncols = max(1, min(len(labels), int((width - 0.4) // (0.6 + text_width(labels)))))
    legend_rows = (
        math.ceil((len(labels) + any(_stopped_early(store, c) for c in cells)) / ncols)
        if named
        else 1
    )
    height = 0.7 + 2.5 * len(groups) + 0.2 * legend_rows
    fig = new_figure(width, height)
    axs = fig.subplots(len(groups), len(columns), squeeze=False, sharey=True)
    for row, (title, group) in enumerate(groups):
        for col, (xlabel, x_of) in enumerate(columns):
            ax = axs[row, col]
            _loss_panel(ax, store, group, x_of, style)
            ax.set_title(title if col == 0 else "")
            if row == len(groups) - 1:
                ax.set_xlabel(xlabel)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
            if col == 0:
                ax.set_ylabel("train loss")
    handles: list[Any] = []
    if named:
        for key, label in zip(configs, labels, strict=True):
            handles.append(Line2D([], [], color=style.color(first[key]), label=label, gid=label))
        if any(_stopped_early(store, c) for c in cells):
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="x",
                    color="black",
                    linestyle="none",
                    label="stopped before its planned steps",
                )
            )
        fig.legend(handles=handles, loc="outside lower center", ncols=ncols, frameon=False)
    shown = "" if named else f"; {len(configs)} configurations, colour only"
    fig.suptitle(fit_title(f"Training loss ({len(cells)} cells{shown})", width))
    return fig


def figures(store: Results) -> dict[str, Any]:
    """Plot name -> a function that draws it (a Figure, or None when there is nothing to show)."""
    return {
        "accuracy": FIGURES["accuracy"],
        "seeds": seeds_figure,
        "loss": loss_figure,
        "memory": FIGURES["memory"],
        "sweeps": lambda s: sweep_figure(s, plot_axes(s)),
    }


def make_plots(store: Results, out_dir: str | Path) -> dict[str, Path]:
    """Write every plot that has data into ``out_dir``; return name -> path (sorted by name)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    with matplotlib.rc_context(RC):
        for name, draw in figures(store).items():
            path = out_dir / f"{name}.png"
            fig = draw(store)
            if fig is not None:
                made[name] = save(fig, path)
            elif path.exists():
                path.unlink()  # stale plot from an earlier render of a different store
    return dict(sorted(made.items()))
