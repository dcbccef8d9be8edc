"""Small, dependency-free statistics for comparing accuracies.

Everything here is exact arithmetic on counts (``math.comb``) or a closed-form normal
approximation; no scipy. Conventions: proportions in [0, 1], intervals at 95 % (z = 1.96),
two-sided p-values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
ALPHA = 0.05
EXACT_LIMIT = 400
"""Discordant/total counts up to this size use exact sums; larger ones a normal approximation."""


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (``(0, 1)`` when n == 0)."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def normal_two_sided_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return math.erfc(abs(z) / math.sqrt(2))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c.

    Under H0 each discordant sample is a fair coin: p = 2 * P(X <= min(b, c)), X ~ Bin(b+c, 1/2).
    Above ``EXACT_LIMIT`` discordant pairs the continuity-corrected normal form is used.
    """
    m = b + c
    if m == 0:
        return 1.0
    if m > EXACT_LIMIT:
        return min(1.0, normal_two_sided_p((abs(b - c) - 1) / math.sqrt(m)))
    term = tail = 1  # C(m, 0), then C(m, i) built incrementally
    for i in range(1, min(b, c) + 1):
        term = term * (m - i + 1) // i
        tail += term
    return min(1.0, 2 * tail / 2**m)


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact test of k1/n1 vs k2/n2 (unpaired samples).

    Sums the hypergeometric probabilities of all tables no more likely than the observed one.
    Above ``EXACT_LIMIT`` total samples the pooled two-proportion z-test is used instead.
    """
    if n1 <= 0 or n2 <= 0:
        return 1.0
    if n1 + n2 > EXACT_LIMIT:
        return two_proportion_z(k1, n1, k2, n2)
    total, successes = n1 + n2, k1 + k2
    lo, hi = max(0, successes - n2), min(successes, n1)
    weights = {x: math.comb(n1, x) * math.comb(n2, successes - x) for x in range(lo, hi + 1)}
    observed = weights[k1]
    # Tiny relative slack so tables tied with the observed one in exact arithmetic count.
    extreme = sum(w for w in weights.values() if w <= observed * (1 + 1e-9))
    return min(1.0, extreme / math.comb(total, successes))


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> float:
    """Pooled two-proportion z-test p-value (normal approximation, unpaired)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return normal_two_sided_p((k1 / n1 - k2 / n2) / se)


def newcombe_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95 % interval for p1 - p2 from two Wilson intervals (Newcombe's hybrid score method)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1)
    l2, u2 = wilson_interval(k2, n2)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (max(-1.0, lower), min(1.0, upper))


def paired_interval(b: int, c: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % interval for a paired difference in proportions, (b - c) / n.

    b: samples only the first system gets right; c: only the second; n: paired samples.
    Wald interval after adding 1/2 to each cell of the 2x2 table (Agresti & Min, 2005), which
    keeps a sensible width when few samples are discordant (plain Wald gives [0, 0] at b = c = 0).
    """
    if n <= 0:
        return (-1.0, 1.0)
    b2, c2, n2 = b + 0.5, c + 0.5, n + 2
    d = (b2 - c2) / n2
    half = z * math.sqrt(max(0.0, (b2 + c2) - (b2 - c2) ** 2 / n2)) / n2
    return (max(-1.0, d - half), min(1.0, d + half))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0.0 for a single value)."""
    if not values:
        return (math.nan, math.nan)
    mean = sum(values) / len(values)
    if len(values) < 2:
        return (mean, 0.0)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return (mean, math.sqrt(var))


@dataclass(frozen=True)
class Comparison:
    """Accuracy of A minus accuracy of B, with its interval and test."""

    k_a: int
    n_a: int
    k_b: int
    n_b: int
    diff: float
    """p_a - p_b."""
    ci: tuple[float, float]
    p_value: float
    test: str
    """`McNemar` (paired on shared sample ids) or `Fisher` (unpaired)."""
    a_only: int = 0
    """Paired samples only A gets right (McNemar b)."""
    b_only: int = 0
    """Paired samples only B gets right (McNemar c)."""

    @property
    def significant(self) -> bool:
        """True when p < 0.05."""
        return self.p_value < ALPHA


def compare_paired(a_only: int, b_only: int, n: int, k_a: int, k_b: int) -> Comparison:
    """Comparison of two systems scored on the same n samples."""
    return Comparison(
        k_a=k_a,
        n_a=n,
        k_b=k_b,
        n_b=n,
        diff=(a_only - b_only) / n if n else 0.0,
        ci=paired_interval(a_only, b_only, n),
        p_value=mcnemar_exact(a_only, b_only),
        test="McNemar",
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
        test="Fisher",
    )


def samples_needed(p1: float, p2: float, z_power: float = 0.8416212335729143) -> int | None:
    """Samples per cell for an unpaired test to detect p1 vs p2 (alpha 0.05, power 80 %)."""
    d = abs(p1 - p2)
    if d == 0:
        return None
    var = p1 * (1 - p1) + p2 * (1 - p2)
    return math.ceil((Z95 + z_power) ** 2 * max(var, 1e-9) / d**2)
