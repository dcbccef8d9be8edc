"""Plots a person can read, checked from matplotlib's own layout: every text inside its figure,
no two texts overlapping, unique legend labels, one colour per configuration in every plot."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from conftest import build_small_store
from matplotlib.collections import Collection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

from reports import load_results, make_plots
from reports.markdown import render_markdown
from reports.plot_cells import MAX_ROWS, interval
from reports.plot_style import RC, styles
from reports.plots import figures, samples_per_step
from tests.reports.plot_stores import demo_store, long_store
from tests.reports.synthetic import pattern, write_attention_store, write_cell


def wide_store(root: Path) -> Path:
    """30 configurations (2 x 15): legends give way to colour, per-cell charts cap at MAX_ROWS."""
    store = root / "wide"
    for i, (mode, lr) in enumerate(itertools.product(["causal", "prefix"], range(15))):
        axes = {"attention.mode": mode, "train.lr": round(1e-4 * (1 + lr), 6)}
        write_cell(store, f"w{i:02d}", axes, correct=pattern(i, 40), steps=6, matrix="wide")
    return store


def seeded_store(root: Path) -> Path:
    """The seeded demo's shape: 3 attention configurations x 3 matched seeds."""
    return write_attention_store(
        root / "seeded", [[450, 449, 296], [18, 159, 378], [436, 431, 295]]
    )


STORES = {
    "demo": demo_store,
    "seeded": seeded_store,
    "long": long_store,
    "small": build_small_store,
    "wide": wide_store,
}


def draw_all(store_dir: Path) -> dict[str, Figure]:
    store = load_results(store_dir)
    with matplotlib.rc_context(RC):
        figs = {name: draw(store) for name, draw in figures(store).items()}
    out = {name: fig for name, fig in figs.items() if fig is not None}
    for fig in out.values():
        fig.canvas.draw()
    return out


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> dict[str, tuple[Path, dict[str, Figure]]]:
    """Every store of STORES built and drawn once for the module: name -> (store, figures).
    The tests below only read the figures."""
    root = tmp_path_factory.mktemp("plot-stores")
    out = {}
    for name, build in STORES.items():
        store_dir = build(root / name)
        out[name] = (store_dir, draw_all(store_dir))
    return out


def shown_texts(fig: Figure) -> list[Text]:
    """Every text matplotlib drew: titles, labels, tick labels in view, annotations, legends."""
    texts: list[Text] = [*fig.texts]
    if fig._suptitle is not None:
        texts.append(fig._suptitle)
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
    for legend in filter(None, legends):
        texts += [*legend.get_texts(), legend.get_title()]
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        texts += ax.texts
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis._update_ticks():
                texts += [tick.label1, tick.label2]
    unique = {id(t): t for t in texts}.values()  # the suptitle is one of fig.texts too
    return [t for t in unique if t.get_visible() and t.get_text().strip()]


def test_every_text_lies_inside_its_figure_and_none_overlap(drawn):
    for name, (_, figs) in drawn.items():
        for plot, fig in figs.items():
            renderer = fig.canvas.get_renderer()
            width, height = fig.bbox.width, fig.bbox.height
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in shown_texts(fig)]
            assert boxes, (name, plot)
            for text, box in boxes:
                inside = box.x0 >= -0.5 and box.y0 >= -0.5
                inside = inside and box.x1 <= width + 0.5 and box.y1 <= height + 0.5
                assert inside, f"{name}/{plot}: {text!r} outside the figure: {box}"
            for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
                assert not box_a.overlaps(box_b), f"{name}/{plot}: {a!r} overlaps {b!r}"


def test_legend_labels_are_unique_and_name_each_configuration_once(drawn):
    for name, (store_dir, figs) in drawn.items():
        labels = styles(load_results(store_dir)).labels
        assert len(set(labels.values())) == len(labels), labels
        for plot, fig in figs.items():
            for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
                if legend is not None:
                    names = [t.get_text() for t in legend.get_texts()]
                    assert len(names) == len(set(names)), f"{name}/{plot}: {names}"


def _colors(artist) -> set[tuple[float, ...]]:
    if isinstance(artist, Line2D):
        return {to_rgb(artist.get_color())}
    if isinstance(artist, Collection):
        return {tuple(np.round(c[:3], 6)) for c in artist.get_edgecolor()}
    if isinstance(artist, Patch):
        return {to_rgb(artist.get_facecolor())}
    return set()


def test_a_configuration_has_one_colour_in_every_plot(drawn):
    for name in ("demo", "long", "small"):
        _, figs = drawn[name]
        seen: dict[str, set] = {}
        where: dict[str, set] = {}
        for plot, fig in figs.items():
            for artist in fig.findobj(lambda a: a.get_gid() is not None):
                rgb = {tuple(round(v, 6) for v in c) for c in _colors(artist)}
                seen.setdefault(artist.get_gid(), set()).update(rgb)
                where.setdefault(artist.get_gid(), set()).add(plot)
        assert seen, name
        for gid, colors in seen.items():
            assert len(colors) == 1, f"{name}: {gid} drawn in {colors}"
            assert {"accuracy", "loss", "memory"} & where[gid], gid
        assert len({next(iter(c)) for c in seen.values()}) == len(seen), "colours repeat"


def test_demo_labels_name_what_varies_briefly(tmp_path):
    store = load_results(demo_store(tmp_path))
    assert sorted(styles(store).labels.values()) == [
        "ga4 | causal·sdpa",
        "ga4 | prefix·eager",
        "ga4 | prefix·sdpa",
        "ga8 | causal·sdpa",
        "ga8 | prefix·eager",
        "ga8 | prefix·sdpa",
    ]


def test_long_axis_values_are_shortened_and_unique(tmp_path):
    labels = list(styles(load_results(long_store(tmp_path))).labels.values())
    assert len(set(labels)) == 12
    assert max(map(len, labels)) <= 40, labels
    assert "llama-3.2-1b | q_proj…o_proj (4)" in labels


def test_loss_is_drawn_against_samples_seen_too(tmp_path):
    store = load_results(demo_store(tmp_path))
    per_step = sorted({samples_per_step(store, c) for c in store.cells})
    assert per_step == [16.0, 32.0]  # micro_batch 4 x grad_accum 4 / 8
    with matplotlib.rc_context(RC):
        fig = figures(store)["loss"](store)
    steps_ax, samples_ax = fig.axes
    assert samples_ax.get_xlabel().startswith("samples seen")
    ends = sorted(
        max(x for seg in lc.get_segments() for x, _ in seg)
        for lc in samples_ax.collections
        if lc.get_gid()
    )
    # equal sample budget: 800 x 16 = 400 x 32 = 12,800, except the cell stopped by its time
    # cap at step 641 (its last logged step is 640)
    assert ends == [640 * 16] + [12_800] * 5
    assert (
        max(max(x for seg in lc.get_segments() for x, _ in seg) for lc in steps_ax.collections)
        == 800
    )


@pytest.mark.parametrize(("k", "n"), [(0, 500), (500, 500), (1, 3), (0, 1), (1, 1)])
def test_error_bars_are_never_negative(k, n):
    rate, minus, plus = interval(k, n)
    assert minus >= 0 and plus >= 0
    assert 0 <= rate - minus <= rate <= rate + plus <= 100


def test_all_right_and_all_wrong_cells_draw(tmp_path):
    store = tmp_path / "edges"
    write_cell(store, "a", {"train.lr": 0.001}, correct=[True] * 50)
    write_cell(store, "b", {"train.lr": 0.01}, correct=[False] * 50)
    made = make_plots(load_results(store), tmp_path / "plots")
    assert set(made) == {"accuracy", "loss", "memory", "sweeps"}


def test_large_stores_cap_rows_and_colour_without_a_legend(drawn):
    _, figs = drawn["wide"]
    rows = sum(len(ax.get_yticklabels()) for ax in figs["accuracy"].axes)
    assert rows == MAX_ROWS
    assert not figs["loss"].legends
    assert "30 configurations, colour only" in figs["loss"]._suptitle.get_text()


def test_settings_shared_by_every_cell_never_list_what_an_axis_varies(tmp_path):
    """The demo's store: only the first cell's config is parsed (every cell completed), so the
    keys of the paired axes must be known from the cells' axes, not from comparing configs."""
    store = load_results(demo_store(tmp_path))
    varied = {"attention.mode", "attention.impl", "train.grad_accum", "train.max_steps"}
    assert not varied & set(store.fixed), sorted(varied & set(store.fixed))
    assert store.fixed["train.micro_batch"] == 4 and store.fixed["seed"] == 0
    text = render_markdown(store)
    shared = text.split("Settings shared by every cell:")[1].split("## Results")[0]
    assert "`train.micro_batch`: `4`" in shared
    assert not any(f"`{k}`" in shared for k in varied), shared
