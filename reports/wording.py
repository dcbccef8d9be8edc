"""The words of an accuracy comparison: every number next to the test or method behind it.

A single-run comparison is worded as being about the two trained runs ("the A run scored higher
than the B run on the same 500 samples"), never as a win of a configuration, and states its test
and the interval that agrees with it (or, for Fisher with Newcombe's interval, says when the two
disagree); only a comparison over matched seeds can say "A beats B", with the number of seeds,
the test over samples and the test over seeds and which variance each covers; a sample-size hint comes
from the power of the test used, or is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reports import fmt
from reports.power import paired_samples_needed, unpaired_samples_needed
from reports.results import CellResult
from reports.stats import ALPHA, Comparison, SeedComparison, excludes_zero, mean_std

FINDINGS_RULE = (
    "Computed from the stored results: configurations are compared only when they differ "
    "in exactly one axis and both trained their full budget. With one run per "
    "configuration a comparison is about the two trained runs (its test covers the "
    "samples, not run-to-run variance) and is never called a win; a configuration is "
    "called better than another only over matched seeds, when the test over samples and "
    "the test over seeds both give p < 0.05. Configurations that differ only in keys that must "
    "not change the function learned (an A/A pair) measure the run-to-run noise floor."
)
"""What every findings list (EXPERIMENTS.md, the page's Findings view) says first."""


def rates(cmp: Comparison | SeedComparison) -> tuple[float, float]:
    """Exact match of A and of B (means over seeds for a seed comparison)."""
    if isinstance(cmp, SeedComparison):
        return (mean_std(cmp.acc_a)[0], mean_std(cmp.acc_b)[0])
    return (cmp.k_a / cmp.n_a, cmp.k_b / cmp.n_b)


def _rates(cmp: Comparison | SeedComparison) -> str:
    pa, pb = rates(cmp)
    return f"{fmt.pct(pa)} vs {fmt.pct(pb)}"


def _n(cmp: Comparison) -> str:
    return f"n = {cmp.n_a}" if cmp.n_a == cmp.n_b else f"n = {cmp.n_a} vs {cmp.n_b}"


def _interval(cmp: Comparison) -> str:
    if cmp.paired and cmp.a_only + cmp.b_only == 0:
        return f"identical on all {cmp.n_a} samples"
    return f"95% CI {fmt.pts_interval(*cmp.ci)} ({cmp.interval})"


def _hint(cmp: Comparison) -> str:
    """Samples for 80 % exact power of this test at the observed rates, when more than were
    used: the smallest such n, or "about" n with the power it reaches."""
    if cmp.paired:
        need = paired_samples_needed(cmp.a_only, cmp.b_only, cmp.n_a)
        unit, at = "paired samples", "this gap and disagreement rate"
    else:
        need = unpaired_samples_needed(*rates(cmp))
        unit, at = "samples per side", "this gap"
    if need is None or need.n <= max(cmp.n_a, cmp.n_b):
        return ""
    test = cmp.test.split()[0]
    if need.smallest:
        return (
            f" (at {at}, {test} exact reaches 80% power from {need.n:,} {unit}: "
            f"{100 * need.power:.1f}%, exact power)"
        )
    reached = "" if need.power is None else f", {100 * need.power:.2f}% power there"
    return f" (at {at}, 80% power needs about {need.n:,} {unit}: {test}, {need.method}{reached})"


def _samples(cmp: Comparison) -> str:
    if cmp.paired:
        return f"on the same {cmp.n_a} samples"
    return f"on different samples ({_n(cmp)})"


def _run_text(axis: str, va: str, vb: str, at: str, cmp: Comparison) -> str:
    """One trained run per side: the words are about the two runs, never the configurations."""
    test = f"{cmp.test} {fmt.pvalue(cmp.p_value)}"
    numbers = f"{_rates(cmp)}, {fmt.pts(cmp.diff)}"
    if cmp.significant:
        return (
            f"`{axis}`: the {va} run scored higher than the {vb} run{at} {_samples(cmp)}: "
            f"{numbers}, {_interval(cmp)}, {test}. One training run each: a difference between "
            f"these two trained runs, not shown for the configurations (no seed variance "
            f"measured), so it is not a win of {va}."
        )
    if cmp.agrees:
        return (
            f"`{axis}`: {va} vs {vb}{at}, one run each: no detectable difference at {_n(cmp)} "
            f"between the two runs ({numbers}, {_interval(cmp)}, {test}){_hint(cmp)}."
        )
    side = "excludes" if excludes_zero(cmp.ci) else "includes"
    below = "below" if cmp.p_value < ALPHA else "not below"
    return (
        f"`{axis}`: {va} vs {vb}{at}, one run each: inconclusive at {_n(cmp)} ({numbers}): the "
        f"{_interval(cmp)} {side} 0 but {test} is {below} {ALPHA}; the two methods disagree "
        f"near the threshold, so this is not called a difference{_hint(cmp)}."
    )


def _seeds_text(axis: str, va: str, vb: str, at: str, cmp: SeedComparison) -> str:
    seeds = len(cmp.per_seed)
    gaps = ", ".join(f"{100 * d:+.1f}" for d in cmp.per_seed)
    ns = sorted(set(cmp.n))
    per_seed_n = f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]}"
    head = (
        f"over {seeds} seeds ({per_seed_n} per seed; {_rates(cmp)} mean, {fmt.pts(cmp.diff)}, "
        f"per-seed gaps {gaps} pts)"
    )
    if cmp.sample_p is None:
        samples = "across samples: not tested (the runs share no per-sample predictions)"
    else:
        samples = (
            f"across samples (sample variance; each of the {cmp.samples} samples counted once, "
            f"its wins summed over the seeds): sign-flip test {fmt.pvalue(cmp.sample_p)}"
        )
    if mean_std(cmp.per_seed)[1] == 0:
        spread = f"across seeds: the same gap in all {seeds} seeds (no seed variance observed)"
    else:
        spread = (
            f"across seeds (seed variance, on these samples): 95% CI "
            f"{fmt.pts_interval(*cmp.seed_ci)}, t-test {fmt.pvalue(cmp.seed_p)}"
        )
    if cmp.significant:
        return f"`{axis}`: **{va} beats {vb}**{at} {head}; {samples}; {spread}."
    return (
        f"`{axis}`: {va} vs {vb}{at}: no detectable difference {head}; {samples}; {spread}; "
        f"a win needs both tests below {ALPHA}, in the same direction."
    )


def _at(where: str) -> str:
    return f" at {where}" if where != "all cells" else ""


def accuracy_text(axis: str, va: Any, vb: Any, cmp: Comparison | SeedComparison, where: str) -> str:
    """The sentence of a one-axis comparison (A is ``va``; ``where``: the other settings)."""
    a, b = fmt.value(va), fmt.value(vb)
    if isinstance(cmp, SeedComparison):
        return _seeds_text(axis, a, b, _at(where), cmp)
    return _run_text(axis, a, b, _at(where), cmp)


def budget_text(
    axis: str, va: Any, vb: Any, where: str, cells: str, cmp: Comparison | SeedComparison
) -> str:
    """A one-axis pair where ``cells`` (ids with their shortfall) did not train their budget."""
    if isinstance(cmp, SeedComparison):
        seen = f"{_rates(cmp)} (means over {len(cmp.per_seed)} seeds)"
    else:
        seen = f"{_rates(cmp)} ({cmp.test} {fmt.pvalue(cmp.p_value)})"
    return (
        f"`{axis}`: {fmt.value(va)} vs {fmt.value(vb)}{_at(where)}: **confounded by the "
        f"training budget**: not every run trained its planned steps ({cells}); {seen} is "
        f"not attributed to `{axis}` and is never called a win."
    )


def _share(count: int, total: int) -> str:
    return f"All {total} runs compared here" if count == total else f"{count} of the {total} runs"


def scoring_note(cells: Sequence[CellResult]) -> str:
    """Sentences for runs whose score is not held out, or not from the best step's weights."""
    val = sum(cell.section("metrics").get("test_is_val") is True for cell in cells)
    final = sum(cell.section("metrics").get("scored_weights") == "final" for cell in cells)
    out = ""
    if val:
        out += (
            f" {_share(val, len(cells))} are scored on the validation split that selected "
            "the checkpoint (no `data.test_path`), not on held-out samples."
        )
    if final:
        out += (
            f" {_share(final, len(cells))} are scored with their final weights, not the best "
            "validation step's."
        )
    return out
