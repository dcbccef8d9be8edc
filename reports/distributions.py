"""Exact tail sums the report's tests need: binomial(m, 1/2) and hypergeometric.

Small tables are summed in integers and divided once (the result is the correctly rounded
rational, so a p-value that is exactly 1/20 prints and compares as 0.05); large ones in log space
relative to the largest term, so they neither overflow nor lose the small tails. Everything else
(incomplete beta, Student's t, the binomial for power) comes from ``scipy.special`` /
``scipy.stats``. ``tests/reports/test_stats_reference.py`` checks every function here against
scipy over many arguments.
"""

from __future__ import annotations

import math
from fractions import Fraction

EXACT_INTEGERS = 2000
"""Up to this many trials binomial sums are exact integer arithmetic, rounded once."""
EXACT_HYPERGEOMETRIC = 6000
"""Up to this many samples (both sides) Fisher's test sums integer table counts."""
TIE = 1e-7
"""Above ``EXACT_HYPERGEOMETRIC``: relative tolerance under which two tables count as equally
likely (as R's fisher.test and scipy)."""


def log_comb(n: int, k: int) -> float:
    """log C(n, k) for 0 <= k <= n."""
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def binom_half_cdf(k: int, m: int) -> float:
    """P(X <= k) for X ~ Binomial(m, 1/2), exact to rounding at any m.

    Up to ``EXACT_INTEGERS`` trials: sum(C(m, i)) / 2^m in integers. Above, terms are built
    downward from C(m, k) / 2^m (the largest one when k <= m/2) by the ratio
    C(m, i-1) / C(m, i) = i / (m - i + 1), stopping once they no longer change the sum.
    """
    if k < 0:
        return 0.0
    if k >= m:
        return 1.0
    if 2 * k > m:
        return 1.0 - binom_half_cdf(m - k - 1, m)
    if m <= EXACT_INTEGERS:
        term = tail = 1
        for i in range(1, k + 1):
            term = term * (m - i + 1) // i
            tail += term
        return tail / (1 << m)
    term = math.exp(log_comb(m, k) - m * math.log(2))
    total = 0.0
    for i in range(k, -1, -1):
        total += term
        if term < total * 1e-17:
            break
        term *= i / (m - i + 1)
    return min(1.0, total)


def _table_counts(n1: int, n2: int, s: int) -> tuple[int, list[int]]:
    """(first x, C(n1, x) C(n2, s - x) for every x with the margins n1, n2, s), in integers."""
    lo, hi = max(0, s - n2), min(s, n1)
    term = math.comb(n1, lo) * math.comb(n2, s - lo)
    counts = [term]
    for x in range(lo, hi):
        term = term * (n1 - x) * (s - x) // ((x + 1) * (n2 - s + x + 1))
        counts.append(term)
    return lo, counts


def hypergeom_two_sided(k1: int, n1: int, k2: int, n2: int) -> float:
    """Fisher's two-sided p: the probability of every table with the observed margins that is
    no more likely than the observed one."""
    s = k1 + k2
    if n1 + n2 <= EXACT_HYPERGEOMETRIC:
        lo, counts = _table_counts(n1, n2, s)
        observed = counts[k1 - lo]
        return float(Fraction(sum(c for c in counts if c <= observed), sum(counts)))
    lo, hi = max(0, s - n2), min(s, n1)
    logs = [log_comb(n1, x) + log_comb(n2, s - x) for x in range(lo, hi + 1)]
    top, observed = max(logs), logs[k1 - lo]
    weights = [math.exp(v - top) for v in logs]
    bound = math.exp(observed - top) * (1 + TIE)
    return min(1.0, math.fsum(w for w in weights if w <= bound) / math.fsum(weights))
