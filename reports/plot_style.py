"""What every plot shares: one short label and one colour per configuration, the panel layout.

A configuration is a set of cells that differ only by repeat (``reports.tables.configurations``).
Its label is built by ``harness/contracts/labels.py`` from the axes that vary (a paired axis, stored as
``"mode=causal, impl=sdpa"``, is split back into its parts), e.g. ``causal·sdpa | ga4``; its
colour is fixed by its position in the store, so a configuration looks the same in every plot.
Artists drawn for a configuration carry its label as their ``gid`` (tests check the colours).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.contracts.labels import MAX_VALUE, Group, axis_texts, elide, short_labels
from reports import fmt
from reports.comparisons import sweep_axes
from reports.results import CellResult, Results, hashable
from reports.tables import configurations

DPI = 100
CHAR_IN = 0.062
"""Width of one label character at the plots' font size, in inches (sizes figures)."""
MAX_FACETS = 6
"""Most panels one figure splits its cells into (by the value of one axis)."""
RC = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.titlelocation": "left",
    "legend.fontsize": 8,
    "svg.hashsalt": "reports",
    "path.simplify": True,
}
"""rcParams of every plot (``make_plots`` applies them)."""


def _parse(text: str) -> Any:
    """A value as ``str()`` wrote it into a paired axis label (numbers, flags, None)."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def axis_group(store: Results, axis: str, value: Any) -> Group:
    """The parts of one axis value: a paired axis's ``"k=v, k=v"`` text back into its parts,
    each named by its dotted key."""
    paired = store.meta.get("paired")
    if isinstance(paired, dict) and axis in paired and isinstance(value, str):
        full = {str(k).rsplit(".", 1)[-1]: str(k) for k in paired[axis]}
        parts = [p.partition("=") for p in value.split(", ")]
        if all(sep for _, sep, _ in parts):
            return tuple((full.get(k, k), _parse(v)) for k, _, v in parts)
    return ((axis, value),)


def setting(store: Results, cell: CellResult, key: str) -> Any:
    """A cell's value of the dotted ``key``: from its config when loaded, else its axes (paired
    ones included), else the store's fixed settings; None when unknown."""
    node: Any = cell.config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is not None:
        return node
    for axis, value in cell.axes.items():
        for k, v in axis_group(store, axis, value):
            if k == key:
                return v
    return store.fixed.get(key)


def palette(n: int) -> list[Any]:
    """``n`` distinct colours: tab10, then tab20's dark shades before its light ones, then a
    continuous map (large sweeps, where colour only hints)."""
    if n <= 10:
        return list(matplotlib.colormaps["tab10"].colors[:n])
    if n <= 20:
        tab20 = matplotlib.colormaps["tab20"].colors
        return list((tab20[0::2] + tab20[1::2])[:n])
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(i / (n - 1)) for i in range(n)]


@dataclass(frozen=True)
class Styles:
    """Label and colour of every configuration of a store (keyed by ``CellResult.config_key``)."""

    labels: dict[tuple, str]
    colors: dict[tuple, Any]
    repeated: frozenset
    """Configurations with more than one cell: their cells' labels carry ``#repeat``."""
    keys: dict[int, tuple]
    """``id(cell)`` -> its configuration key (computed once: large stores draw many cells)."""

    def key(self, cell: CellResult) -> tuple:
        """The cell's configuration key."""
        return self.keys[id(cell)]

    def label(self, cell: CellResult) -> str:
        """The configuration's label."""
        return self.labels[self.key(cell)]

    def color(self, cell: CellResult) -> Any:
        """The configuration's colour."""
        return self.colors[self.key(cell)]

    def cell_label(self, cell: CellResult, label: str | None = None) -> str:
        """A cell's label: its configuration's (or ``label``), plus ``#repeat`` when repeated."""
        text = self.label(cell) if label is None else label
        return f"{text} #{cell.repeat}" if self.key(cell) in self.repeated else text


def styles(store: Results) -> Styles:
    """Labels and colours of every configuration, in store order."""
    groups = configurations(store)
    axes = sweep_axes(store)
    rows = [[axis_group(store, a, cells[0].axes.get(a)) for a in axes] for cells in groups.values()]
    labels = short_labels(rows)
    colors = palette(len(groups))
    return Styles(
        labels=dict(zip(groups, labels, strict=True)),
        colors=dict(zip(groups, colors, strict=True)),
        repeated=frozenset(key for key, cells in groups.items() if len(cells) > 1),
        keys={id(c): key for key, cells in groups.items() for c in cells},
    )


def value_texts(store: Results, axis: str) -> dict[Any, str]:
    """Short text of each value of ``axis`` (hashable value -> text) where the axis is named
    beside it: a number as written (``4``), a string or a paired value shortened (``prefix``,
    ``causal·sdpa``)."""
    values = store.axis_values[axis]
    groups = [axis_group(store, axis, v) for v in values]
    plain = (int, float, bool, type(None))
    if all(len(g) == 1 and isinstance(v, plain) for g, v in zip(groups, values, strict=True)):
        return {hashable(v): elide(fmt.value(v), MAX_VALUE) for v in values}
    texts = axis_texts(groups)
    return {hashable(v): t or "-" for v, t in zip(values, texts, strict=True)}


def facet_axis(store: Results, cells: Sequence[CellResult]) -> str | None:
    """The axis to split ``cells`` into panels by: of the axes that vary among them (two or
    more), the one with the fewest values (at most MAX_FACETS), the first on a tie."""
    axes = sweep_axes(store)
    counts = {a: len({hashable(c.axes.get(a)) for c in cells}) for a in axes}
    varying = [a for a in axes if counts[a] > 1]
    if len(varying) < 2:
        return None
    best = min(varying, key=lambda a: (counts[a], axes.index(a)))
    return best if counts[best] <= MAX_FACETS else None


def facets(store: Results, cells: Sequence[CellResult]) -> list[tuple[str, list[CellResult]]]:
    """``cells`` split by ``facet_axis`` into (panel title, cells), in store order; one untitled
    panel when there is no facet axis."""
    axis = facet_axis(store, cells)
    if axis is None:
        return [("", list(cells))]
    texts = value_texts(store, axis)
    out: dict[Any, list[CellResult]] = {}
    for c in cells:
        out.setdefault(hashable(c.axes.get(axis)), []).append(c)
    return [(f"{axis} = {texts[v]}", group) for v, group in out.items()]


def row_labels(store: Results, facet: str | None) -> dict[tuple, str]:
    """Configuration labels without ``facet`` (the panel's title says it), the same in every
    panel: config key -> label."""
    groups = configurations(store)
    axes = [a for a in sweep_axes(store) if a != facet]
    rows = [[axis_group(store, a, cells[0].axes.get(a)) for a in axes] for cells in groups.values()]
    return dict(zip(groups, short_labels(rows), strict=True))


def text_width(labels: Sequence[str]) -> float:
    """Inches taken by the longest of ``labels`` at the plots' font size."""
    return CHAR_IN * max((len(t) for t in labels), default=0)


def fit_title(text: str, width: float) -> str:
    """``text`` wrapped onto as many lines as a figure ``width`` inches wide needs."""
    return "\n".join(textwrap.wrap(text, max(int((width - 0.3) / (CHAR_IN * 1.15)), 20)))


def new_figure(width: float, height: float) -> Figure:
    """A figure with constrained layout (nothing clipped, nothing overlapping) on the Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.06, w_pad=0.06)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: Path) -> Path:
    """A PNG without the ``Software`` metadata key: the same store gives the same bytes."""
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    return path
