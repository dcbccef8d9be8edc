"""Exact match against each swept axis: one panel per axis, one point per value of it.

Where some configuration has two or more scored seeds (matched repeats), a value's point is at
the seed level, the level a configuration-level claim rests on: for each seed, the exact match
of the cells at that value (averaged over the other axes' settings), drawn as a circle, and
their mean with its 95% t interval over the seeds (run-to-run variance). Without seeds the
runs at a value are pooled (sum of k over sum of n) with a 95% Wilson interval over samples,
which leaves run-to-run variance out; the title and the report's caption say which is drawn.
Grey lines: up to ``MAX_SERIES`` single settings of the other axes (mean over their seeds).
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from reports.comparisons import build_configs, sweep_axes
from reports.plot_style import fit_title, new_figure, text_width, value_texts
from reports.results import Results, hashable
from reports.seed_level import over_seeds, seed_points
from reports.stats import mean_std, wilson_interval

MAX_SERIES = 6
"""Individual series drawn in a sweep plot besides the black one."""
MAX_PANELS = 6
"""Swept axes drawn in the sweeps figure."""
MAX_PANEL_IN = 6.0
"""Widest sweep panel, in inches; values that need more stand upright."""
SEEDS_TITLE = (
    "Exact match vs each swept axis (black: mean over seeds with its 95% interval over seeds; "
    "circles: each seed, averaged over the other settings; grey: single settings)"
)
POOLED_TITLE = (
    "Exact match vs each swept axis (black: the runs at a value pooled, 95% Wilson interval "
    "over samples, no seed variance; grey: single settings)"
)


def _draw_seeds(ax: Any, store: Results, axis: str) -> int:
    """Each seed's circle and the mean with its seed-level interval; returns values drawn."""
    points = seed_points(store, axis)
    xs = sorted(points)
    means = [points[x].mean for x in xs]
    lows = [max(0.0, points[x].mean - points[x].lo) for x in xs]
    highs = [max(0.0, points[x].hi - points[x].mean) for x in xs]
    for x in xs:
        values = points[x].seeds
        ax.plot([x + 0.12] * len(values), values, "o", mfc="none", color="black", alpha=0.6,
                markersize=4)  # fmt: skip
    ax.errorbar(xs, means, yerr=[lows, highs], color="black", marker="D", markersize=4,
                capsize=3, linewidth=1.6)  # fmt: skip
    return len(xs)


def _draw_pooled(ax: Any, store: Results, axis: str) -> int:
    """The runs at each value pooled with a 95% Wilson interval; returns values drawn."""
    pos = {hashable(v): i for i, v in enumerate(store.axis_values[axis])}
    pooled: dict[int, list[int]] = {}
    for cfg in build_configs(store):
        for c in cfg.scored:
            k, n = c.exact()
            kn = pooled.setdefault(pos[hashable(cfg.values[axis])], [0, 0])
            kn[0], kn[1] = kn[0] + k, kn[1] + n
    xs = sorted(pooled)
    rates = [pooled[x][0] / pooled[x][1] for x in xs]
    ci = [wilson_interval(*pooled[x]) for x in xs]
    err = [
        [max(0.0, 100 * (r - lo)) for r, (lo, _) in zip(rates, ci, strict=True)],
        [max(0.0, 100 * (hi - r)) for r, (_, hi) in zip(rates, ci, strict=True)],
    ]
    ax.errorbar(
        xs, [100 * r for r in rates], yerr=err, color="black", marker="o", capsize=3, linewidth=1.6
    )
    return len(xs)


def _draw_series(ax: Any, store: Results, axis: str) -> None:
    """Up to MAX_SERIES single settings of the other axes, each the mean over its seeds."""
    pos = {hashable(v): i for i, v in enumerate(store.axis_values[axis])}
    series: dict[str, dict[int, list[float]]] = {}
    for cfg in build_configs(store):
        x = pos[hashable(cfg.values[axis])]
        for c in cfg.scored:
            k, n = c.exact()
            series.setdefault(cfg.label(skip=axis), {}).setdefault(x, []).append(100 * k / n)
    for _, by_x in sorted(series.items())[:MAX_SERIES]:
        xs = sorted(by_x)
        ys = [mean_std(by_x[x])[0] for x in xs]
        ax.plot(xs, ys, marker=".", linewidth=0.8, alpha=0.6, color="0.6")


def _sweep_panel(store: Results, axis: str, ax: Any, seeds: bool) -> bool:
    """Exact match vs ``axis``; False when fewer than two of its values have a score."""
    scored = {hashable(cfg.values[axis]) for cfg in build_configs(store) if cfg.scored}
    if len(scored) < 2:
        return False
    _draw_series(ax, store, axis)
    (_draw_seeds if seeds else _draw_pooled)(ax, store, axis)
    values = store.axis_values[axis]
    ticks = sweep_ticks(store, axis)
    ax.set_xticks(range(len(values)), ticks)
    if _tick_room(ticks) > MAX_PANEL_IN:  # side by side they would not fit: stand them up
        ax.tick_params(axis="x", labelrotation=90)
    ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set(title=axis, ylabel="exact match, %")
    ax.grid(alpha=0.3)
    return True


def sweep_ticks(store: Results, axis: str) -> list[str]:
    """Tick labels of a sweep panel: the axis's values, shortened."""
    texts = value_texts(store, axis)
    return [texts[hashable(v)] for v in store.axis_values[axis]]


def _tick_room(ticks: list[str]) -> float:
    """Inches the tick labels need side by side."""
    return len(ticks) * (text_width(ticks) + 0.25)


def sweep_figure(store: Results, axes: list[str]) -> Figure | None:
    """One panel per swept axis, each wide enough for its values side by side (or with them
    standing when there are too many); seed-level points where there are seeds."""
    axes = axes[:MAX_PANELS]
    if not axes:
        return None
    rooms = [_tick_room(sweep_ticks(store, a)) for a in axes]
    panel = max([3.2] + [r for r in rooms if r <= MAX_PANEL_IN])
    cols = min(3, len(axes), max(1, int(12 // panel)))
    rows = -(-len(axes) // cols)
    fig = new_figure(
        panel * cols + 0.5, 3.0 * rows + 0.5 + (0.9 if max(rooms) > MAX_PANEL_IN else 0)
    )
    seeds = over_seeds(store)
    drawn = [
        _sweep_panel(store, a, fig.add_subplot(rows, cols, i + 1), seeds)
        for i, a in enumerate(axes)
    ]
    if not any(drawn):
        return None
    fig.suptitle(fit_title(SEEDS_TITLE if seeds else POOLED_TITLE, fig.get_figwidth()))
    return fig


def plot_axes(store: Results) -> list[str]:
    """Axes that get a sweep plot: three or more values, or two numeric values."""
    out = []
    for axis in sweep_axes(store):
        values = store.axis_values[axis]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if len(values) >= 3 or (numeric and len(values) >= 2):
            out.append(axis)
    return out
