"""reports.stats against scipy and statsmodels (test dependencies) over many random tables.

Tables include 0/n and n/n, unequal n, and sizes on both sides of every place where the code
changes method (``EXACT_INTEGERS`` binomial sums; direct vs FFT convolution; Connor's formula vs
exact power). Random cases come from a fixed seed, so a failure is reproducible.
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
import scipy.special
import scipy.stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from reports import distributions, power, stats, wording

RNG_SEED = 9


def _sizes(rng: random.Random, count: int, top: int) -> list[int]:
    return [1, 2, 3, 10, 12, 399, 400, 401] + [rng.randint(1, top) for _ in range(count)]


def _counts(rng: random.Random, n: int) -> list[int]:
    return sorted({0, n, rng.randint(0, n), rng.randint(0, n)})


def test_wilson_matches_statsmodels():
    rng = random.Random(RNG_SEED)
    for n in _sizes(rng, 200, 5000):
        for k in _counts(rng, n):
            ref = proportion_confint(k, n, alpha=0.05, method="wilson")
            assert stats.wilson_interval(k, n) == pytest.approx(ref, abs=1e-12), (k, n)


def test_clopper_pearson_matches_statsmodels():
    rng = random.Random(RNG_SEED)
    for n in _sizes(rng, 200, 5000):
        for k in _counts(rng, n):
            ref = proportion_confint(k, n, alpha=0.05, method="beta")
            assert stats.clopper_pearson(k, n) == pytest.approx(ref, rel=1e-9, abs=1e-13), (k, n)


def test_fisher_matches_scipy():
    rng = random.Random(RNG_SEED)
    cases = [(0, 1, 320, 400), (4, 200, 0, 201), (0, 10, 0, 10), (7, 7, 3, 3), (0, 5, 5, 5)]
    for _ in range(600):
        n1 = rng.choice([rng.randint(1, 30), rng.randint(1, 400), rng.randint(200, 3000)])
        n2 = rng.choice([n1, rng.randint(1, 30), rng.randint(1, 3000)])
        cases.append((rng.choice(_counts(rng, n1)), n1, rng.choice(_counts(rng, n2)), n2))
    for k1, n1, k2, n2 in cases:
        ref = scipy.stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
        got = stats.fisher_exact(k1, n1, k2, n2)
        assert got == pytest.approx(ref, rel=1e-8, abs=1e-14), (k1, n1, k2, n2)


def test_mcnemar_matches_statsmodels():
    rng = random.Random(RNG_SEED)
    limit = distributions.EXACT_INTEGERS
    cases = [(0, 0), (5, 0), (0, 7), (6, 2), (200, 201), (250, 151), (limit // 2, limit // 2 + 1)]
    for _ in range(400):
        m = rng.choice([rng.randint(1, 40), rng.randint(300, 500), rng.randint(1800, 2600)])
        b = rng.choice([0, m, rng.randint(0, m), m // 2 + rng.randint(-30, 30)])
        b = min(max(b, 0), m)
        cases.append((b, m - b))
    for b, c in cases:
        ref = mcnemar([[10, b], [c, 10]], exact=True).pvalue
        assert stats.mcnemar_exact(b, c) == pytest.approx(ref, rel=1e-9, abs=1e-300), (b, c)


def test_newcombe_matches_statsmodels():
    rng = random.Random(RNG_SEED)
    for _ in range(400):
        n1, n2 = rng.randint(1, 600), rng.randint(1, 600)
        k1, k2 = rng.choice(_counts(rng, n1)), rng.choice(_counts(rng, n2))
        ref = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
        got = stats.newcombe_interval(k1, n1, k2, n2)
        assert got == pytest.approx(tuple(float(x) for x in ref), abs=1e-12), (k1, n1, k2, n2)


def test_sign_flip_matches_brute_force_and_fft_matches_direct():
    rng = random.Random(RNG_SEED)
    for _ in range(150):
        diffs = [rng.randint(-3, 3) for _ in range(rng.randint(1, 12))]
        nonzero = [d for d in diffs if d]
        observed = abs(sum(diffs))
        hits = sum(
            abs(sum(s * d for s, d in zip(signs, nonzero, strict=True))) >= observed
            for signs in itertools.product((1, -1), repeat=len(nonzero))
        )
        assert stats.sign_flip_test(diffs) == pytest.approx(hits / 2 ** len(nonzero)), diffs
    # the FFT path (large tables) against the direct convolution on the same distribution
    a, b = np.random.default_rng(RNG_SEED).random((2, 3000))
    assert np.allclose(stats._convolve(a, b), np.convolve(a, b), atol=1e-9)
    big = [3] * 900 + [-3] * 880 + [2] * 700 + [-2] * 690 + [1] * 650 + [-1] * 600
    total, var = sum(big), sum(d * d for d in big)
    normal = math.erfc((abs(total) - 0.5) / math.sqrt(2 * var))  # continuity-corrected
    assert stats.sign_flip_test(big) == pytest.approx(normal, rel=0.01)


def test_t_test_matches_scipy():
    rng = random.Random(RNG_SEED)
    for _ in range(300):
        values = [rng.gauss(rng.choice([0.0, 0.05, 0.3]), 0.1) for _ in range(rng.randint(2, 12))]
        ref = scipy.stats.ttest_1samp(values, 0.0)
        p, (lo, hi) = stats.t_test(values)
        assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
        ci = ref.confidence_interval(0.95)
        assert (lo, hi) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
        assert stats.excludes_zero((lo, hi)) == (p < stats.ALPHA)


def test_mean_std_matches_numpy():
    rng = random.Random(RNG_SEED)
    for _ in range(100):
        values = [rng.random() for _ in range(rng.randint(2, 50))]
        mean, std = stats.mean_std(values)
        assert mean == pytest.approx(np.mean(values), rel=1e-12)
        assert std == pytest.approx(np.std(values, ddof=1), rel=1e-12)


def test_special_functions_match_scipy():
    rng = random.Random(RNG_SEED)
    for _ in range(1500):
        a, b = rng.choice([rng.uniform(0.2, 5), rng.uniform(1, 3000)]), rng.uniform(0.2, 3000)
        x, p = rng.random(), rng.choice([rng.random(), 0.025, 0.975])
        assert distributions.betainc(a, b, x) == pytest.approx(
            scipy.special.betainc(a, b, x), abs=1e-11
        )
        assert distributions.betainc_inv(a, b, p) == pytest.approx(
            scipy.special.betaincinv(a, b, p), rel=1e-9, abs=1e-300
        )
    for df in (1, 2, 3, 4, 7, 30, 1000):
        assert distributions.t_quantile(0.975, df) == pytest.approx(
            scipy.stats.t.ppf(0.975, df), rel=1e-12
        )


def _exact_mcnemar_power(n: int, p10: float, p01: float) -> float:
    """Power by enumerating every (b, c) table, with statsmodels deciding each one."""
    total = 0.0
    for b in range(n + 1):
        for c in range(n - b + 1):
            if mcnemar([[0, b], [c, 0]], exact=True).pvalue < 0.05:
                total += scipy.stats.multinomial.pmf(
                    [b, c, n - b - c], n, [p10, p01, 1 - p10 - p01]
                )
    return total


@pytest.mark.parametrize(("a_only", "b_only", "n"), [(3, 0, 3), (5, 0, 20), (6, 1, 20)])
def test_exact_mcnemar_power_matches_enumeration(a_only, b_only, n):
    needed, how = power.paired_samples_needed(a_only, b_only, n)
    assert how == "exact power"
    p10, p01 = a_only / n, b_only / n
    share, disc = max(a_only, b_only) / (a_only + b_only), (a_only + b_only) / n
    for size in (needed - 1, needed):
        ref = _exact_mcnemar_power(size, p10, p01)
        assert power.mcnemar_power(size, disc, share) == pytest.approx(ref, abs=1e-9)
    assert _exact_mcnemar_power(needed, p10, p01) >= power.POWER
    assert _exact_mcnemar_power(needed - 1, p10, p01) < power.POWER


@pytest.mark.parametrize(("p1", "p2"), [(0.5, 0.2), (0.9, 0.5), (0.3, 0.05)])
def test_casagrande_pike_smith_tracks_fisher_power(p1, p2):
    needed, _ = power.unpaired_samples_needed(p1, p2)
    pmf1 = scipy.stats.binom.pmf(range(needed + 1), needed, p1)
    pmf2 = scipy.stats.binom.pmf(range(needed + 1), needed, p2)
    fisher_power = sum(
        pmf1[x] * pmf2[y]
        for x in range(needed + 1)
        for y in range(needed + 1)
        if scipy.stats.fisher_exact([[x, needed - x], [y, needed - y]]).pvalue < 0.05
    )
    assert fisher_power == pytest.approx(power.POWER, abs=0.05)


def test_paired_interval_agrees_with_mcnemar_on_random_tables():
    """Issue 9: a few percent of small tables had an interval excluding 0 next to p >= 0.05."""
    rng = random.Random(RNG_SEED)
    for _ in range(3000):
        n = rng.randint(1, 60)
        b = rng.randint(0, n)
        c = rng.randint(0, n - b)
        cmp = stats.compare_paired(b, c, n, b + 5, c + 5)
        assert stats.excludes_zero(cmp.ci) == (cmp.p_value < stats.ALPHA), (b, c, n)
        assert cmp.ci[0] <= cmp.diff <= cmp.ci[1]


def test_unpaired_interval_and_test_agree_or_the_wording_says_both():
    rng = random.Random(RNG_SEED)
    disagreements = 0
    # both directions of disagreement: Fisher p < 0.05 with Newcombe's interval around 0
    # (0/19 vs 8/42: p = 0.049, [-33.3, +0.1] pts), and the interval off 0 with p >= 0.05
    cases = [(0, 19, 8, 42), (19, 19, 34, 42)]
    for _ in range(3000):
        n1, n2 = rng.randint(1, 40), rng.randint(1, 40)
        cases.append((rng.randint(0, n1), n1, rng.randint(0, n2), n2))
    for case in cases:
        cmp = stats.compare_unpaired(*case)
        text = wording.accuracy_text("x", "a", "b", cmp, "all cells")
        if cmp.agrees:
            assert ("beats" in text) == (cmp.p_value < stats.ALPHA)
            continue
        disagreements += 1
        assert "beats" not in text and "inconclusive" in text and "disagree" in text
        assert "Fisher exact p" in text and "(Newcombe)" in text
    assert disagreements > 0  # the wording path is exercised
