"""Accuracy comparisons between configurations that differ in one axis, and confounds.

Nothing here is worded unless a number backs it:
"A beats B" only when the test gives p < 0.05, otherwise "no detectable difference at n = ...".
Two configurations are compared only when they differ in exactly one (non-repeat) axis; a value
pair of an axis that no such pair covers is reported as confounded, naming the other keys.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reports import fmt
from reports.results import REPEAT_KEYS, CellResult, Results, hashable
from reports.stats import (
    ALPHA,
    Comparison,
    compare_paired,
    compare_unpaired,
    mean_std,
    samples_needed,
)
from reports.tables import configurations

KINDS = (
    "outcomes",
    "accuracy",
    "not_comparable",
    "confounded",
    "multiple_testing",
    "single_run",
    "repeats",
    "memory",
    "budget",
    "errors",
)
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class Finding:
    """One computed statement."""

    kind: str
    """One of KINDS (the section it is rendered in)."""
    text: str
    axis: str = ""
    significant: bool = False
    winner: Any = None
    """For significant accuracy findings: the better value of ``axis``."""
    loser: Any = None
    p_value: float | None = None
    suggestion: str = ""
    """For confounds: the cell to run that would give a one-axis comparison."""


@dataclass(frozen=True)
class Config:
    """Cells that share every non-repeat axis value."""

    values: dict[str, Any]
    cells: tuple[CellResult, ...]

    @property
    def scored(self) -> list[CellResult]:
        """Cells with an exact-match score."""
        return [c for c in self.cells if c.exact()]

    def label(self, skip: str = "") -> str:
        """``key=value`` of every axis except ``skip``."""
        return fmt.assignment({k: v for k, v in self.values.items() if k != skip})

    def status(self) -> str:
        """Outcomes of the cells, e.g. ``OOM`` or ``failed, timeout``."""
        kinds = sorted({c.outcome for c in self.cells})
        return ", ".join("OOM" if k == "oom" else k for k in kinds)


def build_configs(store: Results) -> list[Config]:
    """Configurations in store order."""
    out = []
    for cells in configurations(store).values():
        values = {k: v for k, v in cells[0].axes.items() if k not in REPEAT_KEYS}
        out.append(Config(values, tuple(cells)))
    return out


def _pairs_by_repeat(a: Config, b: Config) -> list[tuple[CellResult, CellResult]]:
    by_repeat = {c.repeat: c for c in b.scored}
    return [(c, by_repeat[c.repeat]) for c in a.scored if c.repeat in by_repeat]


def compare(a: Config, b: Config) -> Comparison:
    """A vs B: McNemar on shared sample ids when every matched repeat shares them, else Fisher."""
    pairs = _pairs_by_repeat(a, b)
    counts = [0, 0, 0, 0, 0]  # a_only, b_only, n, k_a, k_b
    paired = bool(pairs)
    for ca, cb in pairs:
        shared = ca.sample_ids & cb.sample_ids
        if not shared:
            paired = False
            break
        right_a, right_b = ca.correct_ids & shared, cb.correct_ids & shared
        counts[0] += len(right_a - right_b)
        counts[1] += len(right_b - right_a)
        counts[2] += len(shared)
        counts[3] += len(right_a)
        counts[4] += len(right_b)
    if paired:
        return compare_paired(counts[0], counts[1], counts[2], counts[3], counts[4])
    ka, na = (sum(x) for x in zip(*(c.exact() for c in a.scored), strict=True))
    kb, nb = (sum(x) for x in zip(*(c.exact() for c in b.scored), strict=True))
    return compare_unpaired(ka, na, kb, nb)


def _examples(a: Config, b: Config) -> tuple[str, str]:
    """A few samples one side gets right and the other wrong (first matched repeat)."""
    pairs = _pairs_by_repeat(a, b)
    if not pairs:
        return ("none", "none")
    ra = {p.get("id"): p for p in pairs[0][0].predictions}
    rb = {p.get("id"): p for p in pairs[0][1].predictions}
    shared = sorted(ra.keys() & rb.keys(), key=str)
    out = []
    for ok, bad in ((ra, rb), (rb, ra)):
        ids = [i for i in shared if ok[i].get("correct") and not bad[i].get("correct")]
        shown = ", ".join(
            f"`{i}` ({fmt.cell_text(bad[i].get('answer'), 20)!r} read as "
            f"{fmt.cell_text(bad[i].get('prediction'), 20)!r})"
            for i in ids[:MAX_EXAMPLES]
        )
        out.append(shown or "none")
    return (out[0], out[1])


def _accuracy_text(axis: str, va: Any, vb: Any, cmp: Comparison, where: str) -> str:
    at = f" at {where}" if where != "all cells" else ""
    test = f"{cmp.test} {fmt.pvalue(cmp.p_value)}"
    n = f"n = {cmp.n_a}" if cmp.n_a == cmp.n_b else f"n = {cmp.n_a} vs {cmp.n_b}"
    rates = f"{fmt.pct(cmp.k_a / cmp.n_a)} vs {fmt.pct(cmp.k_b / cmp.n_b)}"
    ci = f"95% CI {fmt.pts_interval(*cmp.ci)}"
    if cmp.significant:
        return (
            f"`{axis}`: **{fmt.value(va)} beats {fmt.value(vb)}**{at}: {rates}, "
            f"{fmt.pts(cmp.diff)}, {ci}, {test}, {n}."
        )
    need = samples_needed(cmp.k_a / cmp.n_a, cmp.k_b / cmp.n_b)
    hint = (
        f" (a {fmt.pts(cmp.diff)[1:]} gap would need about {need} samples per cell)" if need else ""
    )
    return (
        f"`{axis}`: {fmt.value(va)} vs {fmt.value(vb)}{at}: no detectable difference at "
        f"{n} ({rates}, {fmt.pts(cmp.diff)}, {ci}, {test}){hint}."
    )


def accuracy_finding(axis: str, a: Config, b: Config, examples: bool) -> Finding:
    """The comparison of two configurations that differ only in ``axis``."""
    cmp = compare(a, b)
    va, vb = a.values[axis], b.values[axis]
    if cmp.significant and cmp.diff < 0:
        a, b, va, vb = b, a, vb, va
        cmp = compare(a, b)
    text = _accuracy_text(axis, va, vb, cmp, a.label(skip=axis))
    if examples and cmp.test == "McNemar":
        only_a, only_b = _examples(a, b)
        text += (
            f" Right only with {fmt.value(va)}: {cmp.a_only} ({only_a}); "
            f"right only with {fmt.value(vb)}: {cmp.b_only} ({only_b})."
        )
    win = (va, vb) if cmp.significant else (None, None)
    return Finding("accuracy", text, axis, cmp.significant, win[0], win[1], cmp.p_value)


def axis_pairs(store: Results, configs: list[Config], axis: str) -> Iterator[tuple[Config, Config]]:
    """Pairs of configurations differing only in ``axis``: all value pairs for up to 3 values,
    neighbouring values along the sweep for more."""
    rank = {hashable(v): i for i, v in enumerate(store.axis_values[axis])}
    buckets: dict[tuple, list[Config]] = {}
    for c in configs:
        rest = tuple(sorted((k, hashable(v)) for k, v in c.values.items() if k != axis))
        buckets.setdefault(rest, []).append(c)
    for members in buckets.values():
        members = sorted(members, key=lambda c: rank[hashable(c.values[axis])])
        if len(members) <= 3:
            yield from itertools.combinations(members, 2)
        else:
            yield from itertools.pairwise(members)


def sweep_axes(store: Results) -> list[str]:
    """Axes that define configurations (repeat keys excluded)."""
    return [k for k in store.axes if k not in REPEAT_KEYS]


def accuracy_findings(store: Results, configs: list[Config]) -> list[Finding]:
    """Every one-axis pair: a tested difference, or why it cannot be compared."""
    out = []
    examples = len(configs) <= 8
    for axis in sweep_axes(store):
        for a, b in axis_pairs(store, configs, axis):
            if a.scored and b.scored:
                out.append(accuracy_finding(axis, a, b, examples))
                continue
            why = "; ".join(
                f"{fmt.value(c.values[axis])}: {c.status()}" for c in (a, b) if not c.scored
            )
            where = a.label(skip=axis)
            at = f" at {where}" if where != "all cells" else ""
            text = (
                f"`{axis}`: {fmt.value(a.values[axis])} vs {fmt.value(b.values[axis])}{at}: "
                f"not comparable, no score ({why})."
            )
            out.append(Finding("not_comparable", text, axis))
    return out


def _value_pairs(store: Results, axis: str) -> list[tuple[Any, Any]]:
    values = store.axis_values[axis]
    if len(values) <= 3:
        return list(itertools.combinations(values, 2))
    return list(itertools.pairwise(values))


def _differing(a: Config, b: Config) -> list[str]:
    keys = sorted(set(a.values) | set(b.values))
    return [k for k in keys if hashable(a.values.get(k)) != hashable(b.values.get(k))]


def confound_findings(store: Results, configs: list[Config]) -> list[Finding]:
    """Value pairs of an axis that only differ together with other axes."""
    out = []
    for axis in sweep_axes(store):
        covered = {
            frozenset((hashable(a.values[axis]), hashable(b.values[axis])))
            for a, b in axis_pairs(store, configs, axis)
            if a.scored and b.scored
        }
        for v1, v2 in _value_pairs(store, axis):
            if frozenset((hashable(v1), hashable(v2))) in covered:
                continue
            side1 = [c for c in configs if c.scored and hashable(c.values[axis]) == hashable(v1)]
            side2 = [c for c in configs if c.scored and hashable(c.values[axis]) == hashable(v2)]
            if not side1 or not side2:
                continue
            a, b = min(itertools.product(side1, side2), key=lambda ab: len(_differing(*ab)))
            others = [k for k in _differing(a, b) if k != axis]
            cmp = compare(a, b)
            missing = fmt.assignment({**a.values, axis: v2})
            text = (
                f"`{axis}`: {fmt.value(v1)} vs {fmt.value(v2)}: **confounded: also differs in "
                f"{', '.join(f'`{k}`' for k in others)}**. Best available: {a.label()} "
                f"({fmt.pct(cmp.k_a / cmp.n_a)}) vs {b.label()} ({fmt.pct(cmp.k_b / cmp.n_b)}), "
                f"{cmp.test} {fmt.pvalue(cmp.p_value)}; not attributed to `{axis}`."
            )
            out.append(Finding("confounded", text, axis, suggestion=missing))
    return out


def multiple_testing_finding(accuracy: list[Finding]) -> list[Finding]:
    """How many significant results chance alone would give (no correction is applied)."""
    tested = [f for f in accuracy if f.kind == "accuracy"]
    if len(tested) < 5:
        return []
    hits = sum(f.significant for f in tested)
    text = (
        f"{len(tested)} one-axis comparisons were tested at α = {ALPHA} without correction; "
        f"about {len(tested) * ALPHA:.1f} would be significant by chance alone "
        f"(observed: {hits})."
    )
    return [Finding("multiple_testing", text)]


def single_run_finding(accuracy: list[Finding], configs: list[Config]) -> list[Finding]:
    """When no configuration was repeated, say what the tests above can and cannot show."""
    if not any(f.kind == "accuracy" for f in accuracy):
        return []
    if any(len(c.scored) >= 2 for c in configs):
        return []
    text = (
        "Each configuration was trained once (no `repeats`/`seeds`): the tests above compare "
        "these trained models on the same held-out samples; they do not measure run-to-run "
        "(seed) variance, so a gap between two configurations may still lie within it. "
        "Add `repeats: 3` to the matrix to measure it."
    )
    return [Finding("single_run", text)]


def repeat_findings(configs: list[Config]) -> list[Finding]:
    """Mean +/- std of exact match over repeats, with the individual values."""
    out = []
    for c in configs:
        scored = c.scored
        if len(scored) < 2:
            continue
        accs = [k / n for k, n in (x.exact() for x in scored)]
        mean, std = mean_std(accs)
        values = ", ".join(fmt.pct(a) for a in accs)
        text = (
            f"{c.label()}: exact match {fmt.pct(mean)} ± {fmt.pct(std)} "
            f"(mean ± std over {len(accs)} repeats: {values})."
        )
        out.append(Finding("repeats", text))
    return out
