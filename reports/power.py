"""Samples needed for 80 % power at alpha = 0.05, computed for the test the report uses.

Paired comparisons (exact McNemar): Connor's (1987) formula from the discordant rates; where it
gives few samples (normal approximations fail there) the exact power of the exact test is summed
instead and the smallest n with power >= 80 % is returned. Unpaired comparisons (Fisher exact):
the Casagrande-Pike-Smith (1978) correction of the normal formula, which tracks Fisher's test.
The observed rates stand in for the true ones, so the number is a planning hint, not a result.
"""

from __future__ import annotations

import math
from functools import lru_cache

from reports.distributions import betainc, binom_half_cdf, log_comb
from reports.stats import ALPHA, Z95

POWER = 0.8
Z_POWER = 0.8416212335729143
"""Standard normal quantile of POWER."""
EXACT_POWER_LIMIT = 60
"""Connor's formula above this many paired samples; exact power below it."""

_critical: list[int] = [-1]


def critical_value(m: int) -> int:
    """Largest b with exact McNemar p(b, m - b) < ALPHA (-1 when no outcome rejects)."""
    while len(_critical) <= m:
        size, lower = len(_critical), _critical[-1]
        while lower + 1 <= size // 2 and 2 * binom_half_cdf(lower + 1, size) < ALPHA:
            lower += 1
        _critical.append(lower)
    return _critical[m]


def _power_given(m: int, share: float) -> float:
    """Power of the exact McNemar test with m discordant samples, a share of which A wins."""
    low = critical_value(m)
    if low < 0:
        return 0.0
    # P(B <= low) + P(B >= m - low), B ~ Binomial(m, share)
    return betainc(m - low, low + 1, 1 - share) + betainc(m - low, low + 1, share)


def mcnemar_power(n: int, discordant: float, share: float) -> float:
    """Exact power of the exact McNemar test on n paired samples: each is discordant with
    probability ``discordant`` and, if so, won by A with probability ``share``."""
    if discordant >= 1.0:
        return _power_given(n, share)
    log_d, log_c = math.log(discordant), math.log1p(-discordant)
    mean, sd = n * discordant, math.sqrt(n * discordant * (1 - discordant))
    lo, hi = max(0, int(mean - 10 * sd - 1)), min(n, int(mean + 10 * sd + 1))
    return math.fsum(
        math.exp(log_comb(n, m) + m * log_d + (n - m) * log_c) * _power_given(m, share)
        for m in range(lo, hi + 1)
    )


@lru_cache(maxsize=4096)
def paired_samples_needed(a_only: int, b_only: int, n: int) -> tuple[int, str] | None:
    """(paired samples for 80 % power of exact McNemar, how it was computed), or None."""
    if n <= 0 or a_only == b_only:
        return None
    discordant, delta = (a_only + b_only) / n, abs(a_only - b_only) / n
    root = Z95 * math.sqrt(discordant) + Z_POWER * math.sqrt(max(discordant - delta**2, 0.0))
    approx = math.ceil(root**2 / delta**2)
    if approx > EXACT_POWER_LIMIT:
        return (approx, "Connor's formula")
    share = max(a_only, b_only) / (a_only + b_only)
    for size in range(1, 8 * EXACT_POWER_LIMIT):
        if mcnemar_power(size, discordant, share) >= POWER:
            return (size, "exact power")
    return None


def unpaired_samples_needed(p1: float, p2: float) -> tuple[int, str] | None:
    """(samples per side for 80 % power of Fisher's exact test, how), or None when p1 == p2."""
    delta = abs(p1 - p2)
    if delta == 0:
        return None
    mean = (p1 + p2) / 2
    root = Z95 * math.sqrt(2 * mean * (1 - mean)) + Z_POWER * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    normal = root**2 / delta**2
    corrected = normal / 4 * (1 + math.sqrt(1 + 4 / (normal * delta))) ** 2
    return (math.ceil(corrected), "Casagrande-Pike-Smith")
