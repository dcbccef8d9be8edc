"""Accuracy comparisons between configurations that differ in one axis, and confounds.

Nothing here is worded unless a number backs it (the words are in ``reports/wording.py``), and
each finding says what its evidence covers: with one run per side a comparison is about the two
trained runs (a significant one: "the A run scored higher than the B run"), never a win of a
configuration; "A beats B" needs matched seeds and both the test over samples and the test over
seeds below 0.05 (``Finding.claim``), otherwise "no detectable difference".
Two configurations are compared only when they differ in exactly one (non-repeat) axis and both
trained their full budget; a value pair of an axis that no such pair covers is reported as
confounded, naming the other keys, and a pair where a side stopped short (a time cap) as
confounded by the budget.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reports import fmt, wording
from reports.effective import comparison_note
from reports.results import REPEAT_KEYS, CellResult, Results, hashable
from reports.stats import (
    ALPHA,
    Comparison,
    SeedComparison,
    compare_paired,
    compare_seeds,
    compare_unpaired,
    mean_std,
)
from reports.tables import configurations

KINDS = (
    "outcomes",
    "noise_floor",
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
    """For confounds: the recommendation that would remove it (a sentence)."""
    runs: int = 0
    """For accuracy findings: training runs (seeds) per side the comparison rests on."""
    alert: bool = False
    """For outcomes and memory budget: a cell did not complete, or exceeded its budget."""
    gap: float | None = None
    """Accuracy findings: A - B (mean over seeds); noise floors: the largest run-to-run gap."""

    @property
    def claim(self) -> bool:
        """A configuration-level win: significant over two or more matched seeds. A
        significant single-run comparison is about the two trained runs only."""
        return self.significant and self.runs >= 2


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


def compare_runs(ca: CellResult, cb: CellResult) -> Comparison:
    """One run vs one run: exact McNemar on their shared sample ids, else Fisher exact."""
    shared = ca.sample_ids & cb.sample_ids
    if shared:
        right_a, right_b = ca.correct_ids & shared, cb.correct_ids & shared
        return compare_paired(
            len(right_a - right_b), len(right_b - right_a), len(shared), len(right_a), len(right_b)
        )
    (ka, na), (kb, nb) = ca.exact(), cb.exact()
    return compare_unpaired(ka, na, kb, nb)


def _compare_seeds(pairs: list[tuple[CellResult, CellResult]]) -> SeedComparison:
    """Matched seeds: per-seed accuracies, and per sample id the wins summed over the seeds."""
    acc_a, acc_b, ns = [], [], []
    per_sample: dict[Any, int] | None = {}
    for ca, cb in pairs:
        shared = ca.sample_ids & cb.sample_ids
        if not shared:
            (ka, na), (kb, nb) = ca.exact(), cb.exact()
            acc_a.append(ka / na)
            acc_b.append(kb / nb)
            ns.append(min(na, nb))
            per_sample = None
            continue
        right_a, right_b = ca.correct_ids & shared, cb.correct_ids & shared
        acc_a.append(len(right_a) / len(shared))
        acc_b.append(len(right_b) / len(shared))
        ns.append(len(shared))
        if per_sample is not None:
            for i in shared:
                per_sample[i] = per_sample.get(i, 0) + (i in right_a) - (i in right_b)
    diffs = None if per_sample is None else list(per_sample.values())
    return compare_seeds(acc_a, acc_b, ns, diffs)


def compare(a: Config, b: Config) -> Comparison | SeedComparison:
    """A vs B: over seeds when two or more repeats match, else one run each (the matched one,
    or the first scored run of each side)."""
    pairs = _pairs_by_repeat(a, b)
    if len(pairs) >= 2:
        return _compare_seeds(pairs)
    ca, cb = pairs[0] if pairs else (a.scored[0], b.scored[0])
    return compare_runs(ca, cb)


def _examples(a: Config, b: Config) -> tuple[str, str]:
    """A few samples one side gets right and the other wrong (first matched repeat)."""
    pairs = _pairs_by_repeat(a, b) or [(a.scored[0], b.scored[0])]
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


def accuracy_finding(axis: str, a: Config, b: Config, examples: bool) -> Finding:
    """The comparison of two configurations that differ only in ``axis``."""
    cmp = compare(a, b)
    if cmp.significant and cmp.diff < 0:
        a, b = b, a
        cmp = compare(a, b)
    va, vb = a.values[axis], b.values[axis]
    text = wording.accuracy_text(axis, va, vb, cmp, a.label(skip=axis))
    if examples and isinstance(cmp, Comparison) and cmp.paired:
        only_a, only_b = _examples(a, b)
        text += (
            f" Right only with {fmt.value(va)}: {cmp.a_only} ({only_a}); "
            f"right only with {fmt.value(vb)}: {cmp.b_only} ({only_b})."
        )
    text += wording.scoring_note([*a.scored, *b.scored])
    text += comparison_note(a.scored, b.scored)
    win = (va, vb) if cmp.significant else (None, None)
    runs = len(cmp.per_seed) if isinstance(cmp, SeedComparison) else 1
    return Finding(
        "accuracy",
        text,
        axis,
        cmp.significant,
        win[0],
        win[1],
        cmp.p_value,
        runs=runs,
        gap=cmp.diff,
    )


def budget_finding(axis: str, a: Config, b: Config) -> Finding | None:
    """A one-axis pair where a side trained less than its budget: confounded, never a win."""
    short = [(c, c.shortfall) for c in (*a.scored, *b.scored) if c.shortfall]
    if not short:
        return None
    cells = "; ".join(f"`{c.cell_id}`: {why}" for c, why in short)
    ids = ", ".join(f"`{c.cell_id}`" for c, _ in short)
    where = a.label(skip=axis)
    text = wording.budget_text(axis, a.values[axis], b.values[axis], where, cells, compare(a, b))
    return Finding(
        "confounded",
        text,
        axis,
        suggestion=(
            f"Rerun {ids} until {'it trains its' if len(short) == 1 else 'they train their'} "
            "full budget (no binding `train.max_seconds`): comparisons with "
            f"{'it' if len(short) == 1 else 'them'} are confounded until then."
        ),
    )


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


def accuracy_findings(
    store: Results, configs: list[Config], skip: frozenset[tuple[int, int]] = frozenset()
) -> list[Finding]:
    """Every one-axis pair: a tested difference, a budget confound, or why it cannot be
    compared (``skip``: ``(id(a), id(b))`` of pairs reported elsewhere, the A/A pairs)."""
    out = []
    examples = len(configs) <= 8
    for axis in sweep_axes(store):
        for a, b in axis_pairs(store, configs, axis):
            if (id(a), id(b)) in skip:
                continue
            if a.scored and b.scored:
                out.append(budget_finding(axis, a, b) or accuracy_finding(axis, a, b, examples))
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
            rate_a, rate_b = wording.rates(compare(a, b))
            missing = fmt.assignment({**a.values, axis: v2})
            text = (
                f"`{axis}`: {fmt.value(v1)} vs {fmt.value(v2)}: **confounded: also differs in "
                f"{', '.join(f'`{k}`' for k in others)}**. Best available: {a.label()} "
                f"({fmt.pct(rate_a)}) vs {b.label()} ({fmt.pct(rate_b)}); "
                f"not attributed to `{axis}`."
            )
            suggestion = f"Run {missing} to compare `{axis}` without a confound."
            out.append(Finding("confounded", text, axis, suggestion=suggestion))
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


def single_run_finding(accuracy: list[Finding]) -> list[Finding]:
    """When comparisons rest on one training run per side, say what their tests cannot show."""
    tested = [f for f in accuracy if f.kind == "accuracy"]
    single = [f for f in tested if f.runs == 1]
    if not single:
        return []
    which = (
        "Each comparison above rests on one training run per configuration"
        if len(single) == len(tested)
        else f"{len(single)} of the {len(tested)} comparisons above rest on one training run "
        "per configuration (the others compare matched seeds)"
    )
    text = (
        f"{which} (trained once, no matched `repeats`/`seeds`): their tests compare these "
        "trained models on the same held-out samples; they do not measure run-to-run (seed) "
        "variance, so they are worded as being about the runs, never as a win of a "
        "configuration, and feed no recommendation. Add `repeats: 3` to the matrix to compare "
        "the configurations."
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
