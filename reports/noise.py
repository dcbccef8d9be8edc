"""A/A pairs: configurations that differ only in keys that must not change the function learned.

The key table marks such keys (``SAME_FUNCTION`` field metadata in ``harness/contracts/config.py``,
read into ``Results.same_function``): ``attention.impl`` between sdpa and eager_dense. Two such
configurations train the same function, so the gap between their runs is run-to-run noise (float
rounding, at the same seed) and is reported as the measured noise floor, never as a finding; every
single-run gap is compared against it. With matched seeds the pair is tested for equivalence
(TOST on the per-seed gaps, margin ``EQUIVALENCE_MARGIN``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from reports import fmt
from reports.comparisons import Config, Finding, axis_pairs, compare, sweep_axes
from reports.results import REPEAT_KEYS, Results, hashable
from reports.stats import ALPHA, SeedComparison, tost
from reports.wording import rates

EQUIVALENCE_MARGIN = 0.05
"""A/A pairs over seeds: "equivalent" when TOST shows the mean gap within +/- 5 pts."""


@dataclass(frozen=True)
class AAPair:
    """Two configurations that differ only in same-function keys."""

    axis: str
    a: Config
    b: Config
    keys: tuple[str, ...]


def _keys(config: Config) -> dict:
    cell = config.cells[0]
    return cell.keys or cell.axes


def aa_pairs(store: Results, configs: list[Config]) -> list[AAPair]:
    """Every one-axis pair (both scored, both trained their budget) whose differing keys are
    all marked same-function."""
    out = []
    for axis in sweep_axes(store):
        for a, b in axis_pairs(store, configs, axis):
            ka, kb = _keys(a), _keys(b)
            keys = tuple(
                k
                for k in sorted(set(ka) | set(kb))
                if k not in REPEAT_KEYS and hashable(ka.get(k)) != hashable(kb.get(k))
            )
            short = any(c.shortfall for c in (*a.scored, *b.scored))  # a budget confound
            marked = keys and all(k in store.same_function for k in keys)
            if a.scored and b.scored and marked and not short:
                out.append(AAPair(axis, a, b, keys))
    return out


def _gaps(pair: AAPair) -> list[float]:
    """A - B of every matched pair of runs (one pair when a side has a single run)."""
    cmp = compare(pair.a, pair.b)
    if isinstance(cmp, SeedComparison):
        return list(cmp.per_seed)
    return [cmp.diff]


def _head(store: Results, pair: AAPair) -> str:
    va, vb = fmt.value(pair.a.values[pair.axis]), fmt.value(pair.b.values[pair.axis])
    where = pair.a.label(skip=pair.axis)
    at = f" at {where}" if where != "all cells" else ""
    keys = ", ".join(f"`{k}`" for k in pair.keys)
    why = "; ".join(store.same_function[k] for k in pair.keys)
    return (
        f"`{pair.axis}`: {va} vs {vb}{at}: **A/A pair, the measured run-to-run noise floor, "
        f"not a finding**: they differ only in {keys}, which must not change the function "
        f"learned: {why}"
    )


def noise_finding(store: Results, pair: AAPair) -> Finding:
    """The A/A pair's gap as a noise floor; over seeds with its equivalence test."""
    cmp = compare(pair.a, pair.b)
    gaps = _gaps(pair)
    largest = max(abs(g) for g in gaps)
    ra, rb = rates(cmp)
    if not isinstance(cmp, SeedComparison):
        samples = f"the same {cmp.n_a} samples" if cmp.paired else "their samples"
        text = (
            f"{_head(store, pair)}; one run each scored {fmt.pct(ra)} vs {fmt.pct(rb)} on "
            f"{samples}, a gap of {abs(100 * cmp.diff):.1f} pts ({cmp.test} "
            f"{fmt.pvalue(cmp.p_value)}). Two runs of the same function differ this much here, "
            "so a single-run gap of this size between any two configurations may be noise."
        )
        return Finding("noise_floor", text, pair.axis, p_value=cmp.p_value, runs=1, gap=largest)
    p, ci = tost(cmp.per_seed, EQUIVALENCE_MARGIN)
    margin = f"±{100 * EQUIVALENCE_MARGIN:.1f} pts"
    verdict = "**equivalent within" if p < ALPHA else "**not shown equivalent within"
    per_seed = ", ".join(f"{100 * g:+.1f}" for g in gaps)
    text = (
        f"{_head(store, pair)}; over {len(gaps)} seeds: {fmt.pct(ra)} vs {fmt.pct(rb)} mean, "
        f"per-seed gaps {per_seed} pts (largest {100 * largest:.1f} pts between two runs of the "
        f"same function); {verdict} {margin}** (TOST on the per-seed gaps, seed variance: "
        f"{fmt.pvalue(p)}; 90% CI {fmt.pts_interval(*ci)})."
    )
    if cmp.significant:
        text += (
            f" The seed-level test finds a difference ({fmt.pvalue(cmp.p_value)}): check that the "
            "implementations compute the same function."
        )
    return Finding("noise_floor", text, pair.axis, p_value=p, runs=len(gaps), gap=largest)


def noise_findings(store: Results, pairs: list[AAPair]) -> list[Finding]:
    """One noise-floor finding per A/A pair."""
    return [noise_finding(store, pair) for pair in pairs]


def floor(noise: list[Finding]) -> float | None:
    """The largest gap between two runs of the same function (None without an A/A pair)."""
    gaps = [f.gap for f in noise if f.gap is not None]
    return max(gaps) if gaps else None


def against_floor(accuracy: list[Finding], noise: list[Finding]) -> list[Finding]:
    """Every single-run comparison with its gap set against the A/A noise floor."""
    top = floor(noise)
    if top is None:
        return accuracy
    out = []
    for f in accuracy:
        if f.kind != "accuracy" or f.runs != 1 or f.gap is None:
            out.append(f)
            continue
        size = abs(100 * f.gap)
        where = (
            "within it"
            if size <= 100 * top
            else "larger, but with one run each no seed variance is measured"
        )
        text = (
            f"{f.text} A/A noise floor: {100 * top:.1f} pts between two runs of the same "
            f"function in this matrix; this gap of {size:.1f} pts is {where}."
        )
        out.append(replace(f, text=text))
    return out
