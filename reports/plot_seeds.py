"""Exact match per configuration over its seeds: each seed's point, the mean and its interval.

The interval is the seed-level one (95% t interval of the mean over the seeds: run-to-run
variance, on these samples), the variance a configuration-level claim rests on; configurations
trained once are drawn as their single point, labelled "1 run: no seed interval". One row per
configuration in its colour (``reports/plot_style.py``), at most ``MAX_CONFIGS`` rows.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from reports.comparisons import build_configs
from reports.plot_style import fit_title, new_figure, styles, text_width
from reports.results import Results
from reports.stats import mean_std, t_test

MAX_CONFIGS = 25
"""Configurations drawn; the Repeats table lists every one."""
LABEL_X = 103.0
"""Where the mean's label starts, right of 100% (an interval may reach it)."""


def seed_points(store: Results) -> list[tuple[str, object, list[float]]]:
    """(label, colour, exact match per seed in %) of every configuration with a score."""
    style = styles(store)
    out = []
    for config in build_configs(store)[:MAX_CONFIGS]:
        scored = config.scored
        if scored:
            values = [100 * k / n for k, n in (c.exact() for c in scored)]
            out.append((style.label(scored[0]), style.color(scored[0]), values))
    return out


def seeds_figure(store: Results) -> Figure | None:
    """Drawn when some configuration has two or more scored seeds; None otherwise."""
    rows = seed_points(store)
    if not any(len(values) >= 2 for _, _, values in rows):
        return None
    labels = [label for label, _, _ in rows]
    fig = new_figure(5.2 + text_width(labels), 1.3 + 0.32 * len(rows))
    ax = fig.subplots()
    for y, (label, color, values) in enumerate(rows):
        ax.plot(values, [y] * len(values), "o", color=color, alpha=0.55, markersize=5, gid=label)
        if len(values) < 2:
            ax.annotate("1 run: no seed interval", (values[0], y), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize=8)  # fmt: skip
            continue
        mean = mean_std(values)[0]
        _, (lo, hi) = t_test(values)
        lo, hi = max(lo, 0.0), min(hi, 100.0)
        ax.errorbar([mean], [y - 0.22], xerr=[[mean - lo], [hi - mean]], fmt="D", color="black",
                    markersize=5, capsize=3, linewidth=1.4)  # fmt: skip
        ax.annotate(f"{mean:.1f}% ({len(values)} seeds)", (LABEL_X, y - 0.22), va="center",
                    fontsize=8)  # fmt: skip
    ax.set_yticks(range(len(rows)), labels)
    ax.set_ylim(len(rows) - 0.5, -0.7)
    ax.tick_params(axis="y", length=0)
    ax.set(xlim=(-2, LABEL_X + 27), xlabel="exact match on the held-out split, %")
    ax.set_xticks(range(0, 101, 20))
    ax.grid(axis="x", alpha=0.3)
    title = "Exact match over seeds: each seed (dots), mean with 95% interval over seeds (black)"
    fig.suptitle(fit_title(title, fig.get_figwidth()))
    return fig
