"""Plots next to the report: loss curves, accuracy with intervals, peak memory, sweeps.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch). PNGs are
written without the ``Software`` metadata key, so the same store gives the same bytes. Large
stores stay fast: loss curves are one ``LineCollection``, and per-cell bar charts show at most
``MAX_ROWS`` cells (the caption in the markdown says which).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from reports import fmt
from reports.comparisons import build_configs, sweep_axes
from reports.results import CellResult, Results, hashable
from reports.stats import wilson_interval
from reports.tables import peak

MAX_ROWS = 25
"""Cells shown in the per-cell accuracy and memory charts."""
MAX_LEGEND = 10
MAX_SERIES = 6
"""Individual series drawn in a sweep plot besides the pooled one."""
MAX_PANELS = 6
"""Swept axes drawn in the sweeps figure."""
DPI = 100
_RC = {"font.size": 8, "axes.titlesize": 9, "svg.hashsalt": "reports", "path.simplify": True}
_COLORS = matplotlib.colormaps["tab10"].colors


def cell_label(store: Results, cell: CellResult, limit: int = 48) -> str:
    """Short label: the values of the varying axes (and the repeat)."""
    text = ", ".join(fmt.value(cell.axes.get(k)) for k in store.axes) or cell.cell_id
    if cell.repeat:
        text += f" #{cell.repeat}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rows_figure(rows: int) -> tuple[Figure, Any]:
    """A figure for a per-cell chart: fixed margins (no tight_layout: it lays text out twice)."""
    height = 1.0 + 0.2 * rows
    fig = Figure(figsize=(7.0, height))
    fig.subplots_adjust(left=0.36, right=0.97, top=1 - 0.3 / height, bottom=0.5 / height)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    return path


def shown_cells(store: Results, key: str) -> list[CellResult]:
    """Cells drawn in the per-cell chart ``key`` (accuracy or memory), at most MAX_ROWS."""
    cells = list(store.cells)
    if len(cells) <= MAX_ROWS:
        return cells
    if key == "accuracy":
        cells.sort(key=lambda c: -(c.exact()[0] / c.exact()[1]) if c.exact() else 1.0)
    else:
        cells.sort(key=lambda c: -(_memory_value(c)[0] or 0))
    return cells[:MAX_ROWS]


def loss_plot(store: Results, path: Path) -> Path | None:
    """Every cell's training loss on one axes (legend only for small stores)."""
    cells = [c for c in store.cells if len(c.curve) > 1]
    if not cells:
        return None
    fig = Figure(figsize=(6.4, 3.6))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.92, bottom=0.13)
    ax = fig.add_subplot()
    segments = [[(s, loss) for s, loss, _ in c.curve] for c in cells]
    colors = [_COLORS[i % len(_COLORS)] for i in range(len(cells))]
    ax.add_collection(LineCollection(segments, colors=colors, linewidths=1.0, alpha=0.8))
    ax.autoscale()
    if len(cells) <= MAX_LEGEND:
        for color, c in zip(colors, cells, strict=True):
            ax.plot([], [], color=color, label=cell_label(store, c))
        ax.legend(loc="upper right", fontsize=7)
    ax.set(
        xlabel="optimizer step", ylabel="train loss", title=f"Training loss ({len(cells)} cells)"
    )
    ax.grid(alpha=0.3)
    return _save(fig, path)


def accuracy_plot(store: Results, path: Path) -> Path | None:
    """Exact match per cell with its 95 % Wilson interval; unscored cells marked at 0."""
    cells = shown_cells(store, "accuracy")
    if not any(c.exact() for c in cells):
        return None
    fig, ax = _rows_figure(len(cells))
    for y, c in enumerate(cells):
        if c.exact():
            k, n = c.exact()
            lo, hi = wilson_interval(k, n)
            ax.errorbar(
                [100 * k / n],
                [y],
                xerr=[[100 * (k / n - lo)], [100 * (hi - k / n)]],
                fmt="o",
                color="C0",
                capsize=3,
                markersize=4,
            )
        else:
            ax.plot([0], [y], marker="x", color="C3", linestyle="none")
            ax.annotate(
                "OOM" if c.outcome == "oom" else c.outcome,
                (0, y),
                xytext=(6, -3),
                textcoords="offset points",
                color="C3",
                fontsize=7,
            )
    ax.set_yticks(range(len(cells)), [cell_label(store, c) for c in cells])
    ax.invert_yaxis()
    ax.set(
        xlim=(-2, 102), xlabel="exact match, % (95% Wilson interval)", title="Exact match per cell"
    )
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _memory_value(cell: CellResult) -> tuple[float | None, bool]:
    """(bytes to draw, is_oom): OOM cells are drawn at their budget (or in-use bytes)."""
    if cell.outcome == "oom":
        budget = cell.section("memory").get("budget_bytes") or cell.section("oom").get(
            "budget_bytes"
        )
        return (budget or cell.section("oom").get("in_use_bytes"), True)
    return (peak(cell, "train") or peak(cell, "eval"), False)


def memory_plot(store: Results, path: Path) -> Path | None:
    """Train peak memory per cell, the budget as a line, OOM cells at the budget (hatched)."""
    cells = shown_cells(store, "memory")
    values = [_memory_value(c) for c in cells]
    if not any(v for v, _ in values):
        return None
    fig, ax = _rows_figure(len(cells))
    gib = [(v or 0) / 2**30 for v, _ in values]
    colors = ["C3" if oom else "C0" for _, oom in values]
    bars = ax.barh(range(len(cells)), gib, color=colors, height=0.7)
    for bar, (_, oom) in zip(bars, values, strict=True):
        if oom:
            bar.set_hatch("//")
    budgets = sorted({c.section("memory").get("budget_bytes") for c in cells} - {None})
    for b in budgets:
        ax.axvline(b / 2**30, color="C3", linestyle="--", linewidth=1)
    limits = ", ".join(fmt.nbytes(b) for b in budgets)
    title = f"Peak memory per cell (dashed: budget {limits})" if budgets else "Peak memory per cell"
    ax.set_yticks(range(len(cells)), [cell_label(store, c) for c in cells])
    ax.invert_yaxis()
    ax.set(xlabel="peak memory, GiB (train; OOM hatched at the budget)", title=title)
    return _save(fig, path)


def _sweep_panel(store: Results, axis: str, ax: Any) -> bool:
    """Exact match vs ``axis``: pooled over the other settings (95% CI), plus a few series."""
    values = store.axis_values[axis]
    pos = {hashable(v): i for i, v in enumerate(values)}
    pooled: dict[int, list[int]] = {}
    series: dict[str, list[tuple[int, float]]] = {}
    for cfg in build_configs(store):
        x = pos[hashable(cfg.values[axis])]
        for c in cfg.scored:
            k, n = c.exact()
            kn = pooled.setdefault(x, [0, 0])
            kn[0], kn[1] = kn[0] + k, kn[1] + n
            series.setdefault(cfg.label(skip=axis), []).append((x, 100 * k / n))
    if len(pooled) < 2:
        return False
    for i, (_, pts) in enumerate(sorted(series.items())[:MAX_SERIES]):
        by_x: dict[int, list[float]] = {}
        for x, y in pts:  # repeats of one setting: their mean
            by_x.setdefault(x, []).append(y)
        xs = sorted(by_x)
        ys = [sum(by_x[x]) / len(by_x[x]) for x in xs]
        ax.plot(xs, ys, marker=".", linewidth=0.7, alpha=0.5, color=_COLORS[(i + 1) % 10])
    xs = sorted(pooled)
    rates = [pooled[x][0] / pooled[x][1] for x in xs]
    ci = [wilson_interval(*pooled[x]) for x in xs]
    err = [
        [100 * (r - lo) for r, (lo, _) in zip(rates, ci, strict=True)],
        [100 * (hi - r) for r, (_, hi) in zip(rates, ci, strict=True)],
    ]
    ax.errorbar(
        xs, [100 * r for r in rates], yerr=err, color="black", marker="o", capsize=3, linewidth=1.6
    )
    ax.set_xticks(range(len(values)), [fmt.value(v) for v in values])
    ax.set(xlabel=axis, ylabel="exact match, %")
    ax.grid(alpha=0.3)
    return True


def sweep_plot(store: Results, axes: list[str], path: Path) -> Path | None:
    """One panel per swept axis (black: pooled with 95% CI; thin: single settings)."""
    axes = axes[:MAX_PANELS]
    if not axes:
        return None
    cols = min(3, len(axes))
    rows = -(-len(axes) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.8 * rows))
    fig.subplots_adjust(
        left=0.08,
        right=0.98,
        top=1 - 0.35 / (2.8 * rows),
        bottom=0.5 / (2.8 * rows),
        wspace=0.3,
        hspace=0.5,
    )
    drawn = [_sweep_panel(store, a, fig.add_subplot(rows, cols, i + 1)) for i, a in enumerate(axes)]
    if not any(drawn):
        return None
    fig.suptitle("Exact match vs each swept axis (black: pooled, 95% CI)")
    return _save(fig, path)


def plot_axes(store: Results) -> list[str]:
    """Axes that get a sweep plot: three or more values, or two numeric values."""
    out = []
    for axis in sweep_axes(store):
        values = store.axis_values[axis]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if len(values) >= 3 or (numeric and len(values) >= 2):
            out.append(axis)
    return out


def make_plots(store: Results, out_dir: str | Path) -> dict[str, Path]:
    """Write every plot that has data into ``out_dir``; return name -> path (sorted by name)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, Any]] = [
        ("accuracy", lambda p: accuracy_plot(store, p)),
        ("loss", lambda p: loss_plot(store, p)),
        ("memory", lambda p: memory_plot(store, p)),
    ]
    jobs.append(("sweeps", lambda p: sweep_plot(store, plot_axes(store), p)))
    made: dict[str, Path] = {}
    with matplotlib.rc_context(_RC):
        for name, draw in jobs:
            path = out_dir / f"{name}.png"
            result = draw(path)
            if result is not None:
                made[name] = result
            elif path.exists():
                path.unlink()  # stale plot from an earlier render of a different store
    return dict(sorted(made.items()))
