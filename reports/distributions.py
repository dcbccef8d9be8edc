"""Distribution functions the report's tests need, in log space, without scipy.

Binomial and hypergeometric probabilities are summed from ``lgamma`` terms relative to the
largest one, so they neither overflow nor lose the small tails at any n. The regularized
incomplete beta function (continued fraction, Numerical Recipes 3rd ed. §6.4) gives Student's t
and the Clopper-Pearson bounds. ``tests/reports/test_stats_reference.py`` checks every function
here against scipy over many arguments.
"""

from __future__ import annotations

import math
from functools import lru_cache

_TINY = 1e-300
_EPS = 1e-15


def log_comb(n: int, k: int) -> float:
    """log C(n, k) for 0 <= k <= n."""
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


EXACT_INTEGERS = 2000
"""Up to this many trials binomial sums are exact integer arithmetic, rounded once."""


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


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _beta_guess(a: float, b: float, p: float) -> float:
    """Starting point for ``betainc_inv`` (Numerical Recipes ``invbetai``)."""
    if a >= 1.0 and b >= 1.0:
        pp = p if p < 0.5 else 1.0 - p
        t = math.sqrt(-2.0 * math.log(pp))
        x = (2.30753 + t * 0.27061) / (1.0 + t * (0.99229 + t * 0.04481)) - t
        x = -x if p < 0.5 else x
        al = (x * x - 3.0) / 6.0
        h = 2.0 / (1.0 / (2.0 * a - 1.0) + 1.0 / (2.0 * b - 1.0))
        w = x * math.sqrt(al + h) / h - (1.0 / (2.0 * b - 1.0) - 1.0 / (2.0 * a - 1.0)) * (
            al + 5.0 / 6.0 - 2.0 / (3.0 * h)
        )
        return a / (a + b * math.exp(min(2.0 * w, 700.0)))
    lna, lnb = math.log(a / (a + b)), math.log(b / (a + b))
    t, u = math.exp(a * lna) / a, math.exp(b * lnb) / b
    w = t + u
    if p < t / w:
        return (a * w * p) ** (1.0 / a)
    return 1.0 - (b * w * (1.0 - p)) ** (1.0 / b)


def betainc_inv(a: float, b: float, p: float) -> float:
    """The x in [0, 1] with I_x(a, b) = p: Halley steps inside a shrinking bisection bracket
    (a step that leaves the bracket or does not halve the previous one bisects instead)."""
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lo, hi, last = 0.0, 1.0, 1.0
    x = min(max(_beta_guess(a, b, p), 1e-300), 1.0 - 1e-16)
    afac = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    for _ in range(300):
        err = betainc(a, b, x) - p
        if err == 0.0:
            return x
        lo, hi = (x, hi) if err < 0 else (lo, x)
        dens = math.exp((a - 1.0) * math.log(x) + (b - 1.0) * math.log1p(-x) + afac)
        step = err / dens if dens > 0 else math.inf
        if math.isfinite(step):
            step /= 1.0 - 0.5 * min(1.0, step * ((a - 1.0) / x - (b - 1.0) / (1.0 - x)))
            if abs(step) <= 1e-15 * x:
                return x - step
        new = x - step
        if not (lo < new < hi and abs(step) <= 0.5 * last):
            new = 0.5 * (lo + hi)
        if hi - lo <= 1e-16 * hi:
            return new
        last, x = abs(new - x), new
    return x


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


@lru_cache(maxsize=64)
def t_quantile(q: float, df: int) -> float:
    """The q-quantile of Student's t (q in (0.5, 1))."""
    x = betainc_inv(df / 2.0, 0.5, 2.0 * (1.0 - q))
    return math.sqrt(df * (1.0 - x) / x)
