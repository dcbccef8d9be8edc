"""Tests and intervals for comparing accuracies, each exactly what its label says.

Conventions: proportions in [0, 1], intervals at 95 %, two-sided p-values; exact integer or
log-space sums in ``reports/distributions.py``, the beta and t distributions from scipy. Every
test is exact at every size; each comparison pairs
a test with an interval that agrees with it (excludes 0 exactly when p < 0.05), or says so when
the two can disagree (Fisher's test with Newcombe's interval). ``tests/reports`` checks each
function against scipy / statsmodels over many random tables.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.special
import scipy.stats

from reports.distributions import binom_half_cdf, hypergeom_two_sided, log_comb

Z95 = 1.959963984540054
ALPHA = 0.05


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n: exactly 0 at k = 0 and 1 at k = n
    (``(0, 1)`` when n == 0)."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k <= 0 else max(0.0, centre - half)
    hi = 1.0 if k >= n else min(1.0, centre + half)
    return (lo, hi)


def clopper_pearson(k: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for a binomial proportion k/n."""
    if n <= 0:
        return (0.0, 1.0)
    lo = 0.0 if k <= 0 else float(scipy.special.betaincinv(k, n - k + 1, alpha / 2))
    hi = 1.0 if k >= n else float(scipy.special.betaincinv(k + 1, n - k, 1 - alpha / 2))
    return (lo, hi)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c, at any size.

    Under H0 each discordant sample is a fair coin: p = min(1, 2 P(X <= min(b, c))),
    X ~ Binomial(b + c, 1/2).
    """
    m = b + c
    if m == 0:
        return 1.0
    return min(1.0, 2 * binom_half_cdf(min(b, c), m))


def mcnemar_interval(b: int, c: int, n: int) -> tuple[float, float]:
    """95 % interval for the paired difference (b - c) / n that agrees with ``mcnemar_exact``.

    The Clopper-Pearson interval [lo, hi] for the share b / (b + c) of discordant samples won by
    the first system inverts the same binomial test (it excludes 1/2 exactly when p < 0.05);
    mapped to the difference, conditional on the m = b + c discordant samples, it is
    m / n * (2 lo - 1, 2 hi - 1). ``[0, 0]`` when no sample is discordant. It leaves out the
    uncertainty in m itself: when one side wins every disagreement its far end is the observed
    difference.
    """
    m = b + c
    if n <= 0 or m == 0:
        return (0.0, 0.0)
    lo, hi = clopper_pearson(b, m)
    return (m / n * (2 * lo - 1), m / n * (2 * hi - 1))


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact test of k1/n1 vs k2/n2 (unpaired samples), at any size.

    Sums the hypergeometric probabilities of all tables with the observed margins that are no
    more likely than the observed one (``distributions.hypergeom_two_sided``: in integers up to
    6,000 samples, so ties are exact and p = 1/20 is not below 0.05; in log space above): O(n).
    """
    if n1 <= 0 or n2 <= 0:
        return 1.0
    return hypergeom_two_sided(k1, n1, k2, n2)


def newcombe_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95 % interval for p1 - p2 from two Wilson intervals (Newcombe's hybrid score method)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1)
    l2, u2 = wilson_interval(k2, n2)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (max(-1.0, lower), min(1.0, upper))


def _binom_half_pmf(m: int) -> np.ndarray:
    return np.array([math.exp(log_comb(m, i) - m * math.log(2)) for i in range(m + 1)])


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.size * b.size <= 4_000_000:
        return np.convolve(a, b)
    size = a.size + b.size - 1
    out = np.fft.irfft(np.fft.rfft(a, size) * np.fft.rfft(b, size), size)
    return np.clip(out, 0.0, None)


def sign_flip_test(diffs: Sequence[int]) -> float:
    """Exact two-sided paired randomization (sign-flip) test of integer per-sample differences.

    Under H0 each difference is as likely to have either sign; p = P(|sum| >= |observed sum|)
    over all 2^m sign flips, computed by convolving one Binomial(c, 1/2) per magnitude. With
    differences in {-1, 0, 1} this is the exact McNemar test.
    """
    mags = Counter(abs(int(d)) for d in diffs if d)
    observed = abs(sum(int(d) for d in diffs))
    if not mags or observed == 0:
        return 1.0
    total = sum(k * c for k, c in mags.items())
    dist = np.ones(1)
    for k, c in sorted(mags.items()):
        kernel = np.zeros(k * c + 1)
        kernel[::k] = _binom_half_pmf(c)
        dist = _convolve(dist, kernel)
    t = 2 * np.arange(total + 1) - total
    return float(min(1.0, dist[np.abs(t) >= observed].sum()))


def t_test(values: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """One-sample t-test of mean 0 and its 95 % interval (they agree by construction).

    With zero spread the interval is the mean itself and p is 0 (every value the same, non-zero)
    or 1 (all zero). Needs at least two values.
    """
    n = len(values)
    mean, std = mean_std(values)
    if std == 0:
        return (1.0 if mean == 0 else 0.0, (mean, mean))
    se = std / math.sqrt(n)
    half = float(scipy.stats.t.ppf(1 - ALPHA / 2, n - 1)) * se
    return (float(2 * scipy.stats.t.sf(abs(mean / se), n - 1)), (mean - half, mean + half))


def tost(values: Sequence[float], margin: float) -> tuple[float, tuple[float, float]]:
    """Equivalence of the mean to 0 within ``margin``: two one-sided t-tests (TOST) and the
    90 % interval that agrees with them (p < 0.05 exactly when it lies inside +/- margin).

    With zero spread the interval is the mean itself and p is 0 (inside) or 1. Needs at least
    two values.
    """
    n = len(values)
    mean, std = mean_std(values)
    if std == 0:
        return (0.0 if abs(mean) < margin else 1.0, (mean, mean))
    se, df = std / math.sqrt(n), n - 1
    lower = float(scipy.stats.t.sf((mean + margin) / se, df))
    upper = float(scipy.stats.t.cdf((mean - margin) / se, df))
    half = float(scipy.stats.t.ppf(1 - ALPHA, df)) * se
    return (max(lower, upper), (mean - half, mean + half))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0.0 for a single value)."""
    if not values:
        return (math.nan, math.nan)
    if min(values) == max(values):  # exactly no spread, whatever the rounding of the sum
        return (values[0], 0.0)
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return (mean, 0.0)
    var = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return (mean, math.sqrt(var))


def excludes_zero(ci: tuple[float, float]) -> bool:
    """True when an interval lies strictly on one side of 0."""
    return ci[0] > 0 or ci[1] < 0


@dataclass(frozen=True)
class Comparison:
    """One training run of A vs one of B: accuracy difference, its test and interval."""

    k_a: int
    n_a: int
    k_b: int
    n_b: int
    diff: float
    """p_a - p_b."""
    ci: tuple[float, float]
    p_value: float
    test: str
    """`McNemar exact` (paired on shared sample ids) or `Fisher exact` (unpaired)."""
    interval: str
    """How ``ci`` was computed (it agrees with the test for McNemar, not always for Fisher)."""
    a_only: int = 0
    """Paired samples only A gets right (McNemar b)."""
    b_only: int = 0
    """Paired samples only B gets right (McNemar c)."""

    @property
    def paired(self) -> bool:
        """True for McNemar on shared samples."""
        return self.test.startswith("McNemar")

    @property
    def agrees(self) -> bool:
        """True when the interval excludes 0 exactly when the test rejects at ALPHA."""
        return excludes_zero(self.ci) == (self.p_value < ALPHA)

    @property
    def significant(self) -> bool:
        """True when p < 0.05 and the interval excludes 0 (a disagreement is not a win)."""
        return self.p_value < ALPHA and excludes_zero(self.ci)


def compare_paired(a_only: int, b_only: int, n: int, k_a: int, k_b: int) -> Comparison:
    """Comparison of two systems scored on the same n samples (exact McNemar + its interval)."""
    return Comparison(
        k_a=k_a,
        n_a=n,
        k_b=k_b,
        n_b=n,
        diff=(a_only - b_only) / n if n else 0.0,
        ci=mcnemar_interval(a_only, b_only, n),
        p_value=mcnemar_exact(a_only, b_only),
        test="McNemar exact",
        interval=f"exact, conditional on the {a_only + b_only} samples where they disagree",
        a_only=a_only,
        b_only=b_only,
    )


def compare_unpaired(k_a: int, n_a: int, k_b: int, n_b: int) -> Comparison:
    """Comparison of two systems scored on different (or unknown) samples."""
    return Comparison(
        k_a=k_a,
        n_a=n_a,
        k_b=k_b,
        n_b=n_b,
        diff=k_a / n_a - k_b / n_b,
        ci=newcombe_interval(k_a, n_a, k_b, n_b),
        p_value=fisher_exact(k_a, n_a, k_b, n_b),
        test="Fisher exact",
        interval="Newcombe",
    )


@dataclass(frozen=True)
class SeedComparison:
    """A vs B over several training runs (seeds) matched by repeat index.

    Two tests, each named by the variance it covers: ``sample_p`` (sign-flip test over the
    samples, each sample's correctness summed over the seeds: sample variance, these seeds) and
    ``seed_p`` (t-test over the per-seed differences: seed variance, these samples). Repeats are
    never pooled as independent samples: a sample scored in three seeds counts once.
    """

    acc_a: tuple[float, ...]
    """Exact match of A per seed."""
    acc_b: tuple[float, ...]
    n: tuple[int, ...]
    """Samples per seed (shared ones when paired)."""
    seed_ci: tuple[float, float]
    seed_p: float
    sample_p: float | None
    """None when some seed has no shared per-sample predictions (not tested over samples)."""
    samples: int = 0
    """Distinct samples in the sign-flip test."""
    sample_sum: int = 0
    """Sum of the per-sample differences (its sign is the direction the samples test saw)."""

    @property
    def per_seed(self) -> tuple[float, ...]:
        """A - B in each seed."""
        return tuple(a - b for a, b in zip(self.acc_a, self.acc_b, strict=True))

    @property
    def diff(self) -> float:
        """Mean of the per-seed differences."""
        return mean_std(self.per_seed)[0]

    @property
    def p_value(self) -> float:
        """The larger p-value: a win needs both tests below ALPHA."""
        return max(self.seed_p, 1.0 if self.sample_p is None else self.sample_p)

    @property
    def significant(self) -> bool:
        """True when the samples test and the seeds test both give p < 0.05, in the same
        direction."""
        return self.p_value < ALPHA and self.sample_sum * self.diff > 0


def compare_seeds(
    acc_a: Sequence[float],
    acc_b: Sequence[float],
    n: Sequence[int],
    sample_diffs: Sequence[int] | None,
) -> SeedComparison:
    """Comparison over matched seeds; ``sample_diffs``: per sample, (# seeds A right) - (# seeds
    B right), or None when the runs share no per-sample predictions."""
    per_seed = [a - b for a, b in zip(acc_a, acc_b, strict=True)]
    seed_p, seed_ci = t_test(per_seed)
    return SeedComparison(
        acc_a=tuple(acc_a),
        acc_b=tuple(acc_b),
        n=tuple(n),
        seed_ci=seed_ci,
        seed_p=seed_p,
        sample_p=None if sample_diffs is None else sign_flip_test(sample_diffs),
        samples=0 if sample_diffs is None else len(sample_diffs),
        sample_sum=0 if sample_diffs is None else sum(sample_diffs),
    )
