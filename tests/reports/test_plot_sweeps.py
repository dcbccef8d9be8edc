"""sweeps.png says what its black interval is: over seeds where there are seeds (each seed a
circle, the mean with its 95% t interval over the seeds), else the pooled runs' Wilson interval
over samples; the report's caption names the same one."""

from __future__ import annotations

import math

import matplotlib
import pytest
import scipy.stats
from matplotlib.container import ErrorbarContainer
from statsmodels.stats.proportion import proportion_confint

from reports import load_results
from reports.markdown import render_markdown
from reports.plot_style import RC
from reports.plot_sweeps import sweep_figure
from tests.reports.plot_stores import demo_store
from tests.reports.synthetic import write_attention_store

N = 500
SCORES = [[450, 449, 296], [18, 159, 378], [436, 431, 295]]
"""Right answers of 500 per attention option x seed (the Intel demo's per-seed figures)."""


def _panel(store_dir):
    store = load_results(store_dir)
    with matplotlib.rc_context(RC):
        fig = sweep_figure(store, ["attention"])
    return fig, fig.axes[0]


def _black_bars(ax) -> tuple[list[float], list[float], list[float]]:
    """(y, low end, high end) of the black error-bar line, in x order."""
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    ys = list(bars.lines[0].get_ydata())
    (segments,) = bars.lines[2]
    ends = sorted((seg[0][0], min(seg[:, 1]), max(seg[:, 1])) for seg in segments.get_segments())
    return ys, [lo for _, lo, _ in ends], [hi for _, _, hi in ends]


def test_with_seeds_each_seed_is_a_circle_and_the_interval_is_over_seeds(tmp_path):
    fig, ax = _panel(write_attention_store(tmp_path / "s", SCORES))
    circles = sorted(
        (round(float(line.get_xdata()[0])), sorted(float(y) for y in line.get_ydata()))
        for line in ax.lines
        if line.get_marker() == "o" and line.get_markerfacecolor() == "none"
    )
    assert circles == [(x, sorted(100 * k / N for k in per)) for x, per in enumerate(SCORES)]
    ys, lows, highs = _black_bars(ax)
    for x, per in enumerate(SCORES):
        values = [100 * k / N for k in per]
        mean, sem = sum(values) / 3, scipy.stats.sem(values)
        lo, hi = scipy.stats.t.interval(0.95, 2, loc=mean, scale=sem)
        assert ys[x] == pytest.approx(mean)
        assert lows[x] == pytest.approx(max(lo, 0.0)) and highs[x] == pytest.approx(min(hi, 100))
    assert "interval over seeds" in fig._suptitle.get_text().replace("\n", " ")
    text = render_markdown(load_results(tmp_path / "s"), {"sweeps": "p/sweeps.png"})
    assert "95% t interval over the seeds" in text and "Wilson" not in text.split("sweeps.png")[1]


def test_without_seeds_the_pooled_interval_is_named_as_over_samples(tmp_path):
    store_dir = demo_store(tmp_path)  # one run per configuration: 2 accumulation settings each
    store = load_results(store_dir)
    fig, ax = _panel(store_dir)
    ys, lows, highs = _black_bars(ax)
    pooled: dict[str, list[int]] = {}
    for c in store.cells:
        k, n = c.exact()
        kn = pooled.setdefault(c.axes["attention"], [0, 0])
        kn[0], kn[1] = kn[0] + k, kn[1] + n
    for y, lo, hi, (k, n) in zip(ys, lows, highs, pooled.values(), strict=True):
        ref_lo, ref_hi = proportion_confint(k, n, method="wilson")
        assert y == pytest.approx(100 * k / n)
        assert math.isclose(lo, 100 * ref_lo) and math.isclose(hi, 100 * ref_hi)
    assert "Wilson interval over samples" in fig._suptitle.get_text().replace("\n", " ")
    text = render_markdown(store, {"sweeps": "p/sweeps.png"})
    caption = text.split("sweeps.png)")[1]
    assert "Wilson interval over samples" in caption and "no seed variance" in caption


def test_the_page_draws_the_same_seed_level_points_as_sweeps_png(tmp_path):
    from reports.html.payload import accuracy_by_axis

    seeded = accuracy_by_axis(load_results(write_attention_store(tmp_path / "s", SCORES)))
    points = seeded["attention"]["seed_level"]
    for x, per in enumerate(SCORES):
        values = [k / N for k in per]
        mean = sum(values) / 3
        lo, hi = scipy.stats.t.interval(0.95, 2, loc=mean, scale=scipy.stats.sem(values))
        assert points[x]["seeds"] == pytest.approx(values)
        assert points[x]["rate"] == pytest.approx(mean)
        assert points[x]["lo"] == pytest.approx(max(lo, 0.0))
        assert points[x]["hi"] == pytest.approx(min(hi, 1.0))
    single = accuracy_by_axis(load_results(demo_store(tmp_path)))
    assert all(axis["seed_level"] is None for axis in single.values())
