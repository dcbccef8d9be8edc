"""Samples needed for 80 % power at alpha = 0.05, from the exact power of the test the report uses.

The observed rates stand in for the true ones, so the number is a planning hint, not a result.
A closed formula starts the search (Connor 1987 for paired samples and exact McNemar;
Casagrande-Pike-Smith 1978 for Fisher's exact test on two samples), but neither delivers what it
promises: Connor's n gives 0.75-0.80 exact power. The exact power of the exact test is summed
instead and the smallest n that reaches 80 % is returned; where that search would be too long
(large n) the hint says "about" and the power it reaches, and says so when it was not computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.stats

from reports.distributions import log_comb
from reports.stats import ALPHA, Z95

POWER = 0.8
Z_POWER = 0.8416212335729143
"""Standard normal quantile of POWER."""
SEARCH_FROM_ONE = 200
"""Formula estimates up to this size: every n from 1 up is tried (exact power is not monotone
in n, so a small n may reach 80 % before a larger one does)."""
PAIRED_SEARCH = 5000
"""Above this Connor estimate the paired hint is "about": n grows by 1 % steps."""
UNPAIRED_SEARCH = 60
"""Above this Casagrande-Pike-Smith estimate the unpaired hint is "about" (one power sum)."""
UNPAIRED_POWER = 300
"""Above this many samples per side the unpaired power is not summed at all."""
BLOCK = 256
"""Sizes whose power is summed in one array."""


@dataclass(frozen=True)
class SampleSize:
    """A sample-size hint: ``n`` and the exact power the test has there."""

    n: int
    power: float | None
    """Exact power at ``n``; None when too large to sum (the formula's value stands)."""
    smallest: bool
    """True when ``n`` is the smallest size tried upward that reaches 80 % (else "about")."""
    method: str
    """How ``n`` was found, for the report."""


def critical_values(m: np.ndarray) -> np.ndarray:
    """Largest b with exact McNemar p(b, m - b) < ALPHA for each m (-1 when none rejects)."""
    return scipy.stats.binom.ppf(ALPHA / 2, m, 0.5).astype(int) - 1


def _power_given(m: np.ndarray, share: float) -> np.ndarray:
    """Power of exact McNemar with m discordant samples, a share of which A wins."""
    low = critical_values(m)
    lower = scipy.stats.binom.cdf(low, m, share)
    upper = scipy.stats.binom.sf(m - low - 1, m, share)
    return np.where(low < 0, 0.0, lower + upper)


def power_curve(sizes: np.ndarray, discordant: float, share: float) -> np.ndarray:
    """Exact power of the exact McNemar test at each of ``sizes`` paired samples: each sample
    is discordant with probability ``discordant`` and, if so, won by A with probability
    ``share``. The power given m discordant samples is computed once for every m; each size
    sums it against Binomial(n, discordant) over +/- 10 standard deviations."""
    given = _power_given(np.arange(int(sizes.max()) + 1), share)
    if discordant >= 1.0:
        return given[sizes]
    width = int(10 * math.sqrt(sizes.max() * discordant * (1 - discordant))) + 2
    centre = np.round(sizes * discordant).astype(int)[:, None]
    m = centre + np.arange(-width, width + 1)[None, :]
    inside = (m >= 0) & (m <= sizes[:, None])
    m = np.clip(m, 0, sizes[:, None])
    weights = np.where(inside, scipy.stats.binom.pmf(m, sizes[:, None], discordant), 0.0)
    return (weights * given[m]).sum(axis=1)


def mcnemar_power(n: int, discordant: float, share: float) -> float:
    """Exact power of the exact McNemar test on n paired samples (``power_curve`` at n)."""
    return float(power_curve(np.array([n]), discordant, share)[0])


def _search(power_at, estimate: int, limit: int, method: str) -> SampleSize:
    """Smallest n with power >= POWER, from 1 (small estimates) or half the estimate up; above
    ``limit``, 1 % steps up from the estimate ("about"). ``power_at`` maps an array of sizes to
    their powers."""
    if estimate <= limit:
        start = 1 if estimate <= SEARCH_FROM_ONE else estimate // 2
        for low in range(start, 4 * estimate + 8, BLOCK):
            sizes = np.arange(low, min(low + BLOCK, 4 * estimate + 8))
            reached = power_at(sizes)
            hits = np.flatnonzero(reached >= POWER)
            if hits.size:
                return SampleSize(int(sizes[hits[0]]), float(reached[hits[0]]), True, "exact power")
    n = estimate
    reached = float(power_at(np.array([n]))[0])
    while reached < POWER:
        n = math.ceil(n * 1.01)
        reached = float(power_at(np.array([n]))[0])
    return SampleSize(n, reached, False, f"{method}, then exact power in 1% steps")


def _connor(a_only: int, b_only: int, n: int) -> int:
    discordant, delta = (a_only + b_only) / n, abs(a_only - b_only) / n
    root = Z95 * math.sqrt(discordant) + Z_POWER * math.sqrt(max(discordant - delta**2, 0.0))
    return max(1, math.ceil(root**2 / delta**2))


@lru_cache(maxsize=4096)
def paired_samples_needed(a_only: int, b_only: int, n: int) -> SampleSize | None:
    """Paired samples for 80 % exact power of exact McNemar at the observed discordant rates."""
    if n <= 0 or a_only == b_only:
        return None
    discordant = (a_only + b_only) / n
    share = max(a_only, b_only) / (a_only + b_only)
    return _search(
        lambda sizes: power_curve(sizes, discordant, share),
        _connor(a_only, b_only, n),
        PAIRED_SEARCH,
        "Connor's formula",
    )


@lru_cache(maxsize=256)
def _log_combs(n: int) -> np.ndarray:
    return np.array([log_comb(n, i) for i in range(n + 1)])


def _binom_pmf(n: int, p: float) -> np.ndarray:
    """Binomial(n, p) probabilities of 0..n (log space; scipy at p = 0 or 1)."""
    if p <= 0.0 or p >= 1.0:
        return scipy.stats.binom.pmf(np.arange(n + 1), n, p)
    x = np.arange(n + 1)
    return np.exp(_log_combs(n) + x * math.log(p) + (n - x) * math.log1p(-p))


def _rejects(n: int) -> np.ndarray:
    """(n + 1) x (n + 1) booleans: Fisher's two-sided test rejects x/n vs y/n at ALPHA (it
    depends on n alone, so it is computed once per n)."""
    logs_n = _log_combs(n)
    out = np.zeros((n + 1, n + 1), dtype=bool)
    for s in range(2 * n + 1):
        xs = np.arange(max(0, s - n), min(s, n) + 1)
        logs = logs_n[xs] + logs_n[s - xs]
        h = np.exp(logs - logs.max())
        h /= h.sum()
        ordered = np.sort(h)
        cums = np.cumsum(ordered)
        p = cums[np.searchsorted(ordered, h * (1 + 1e-7), side="right") - 1]
        out[xs, s - xs] = p < ALPHA
    return out


_cached_rejects = lru_cache(maxsize=512)(_rejects)


def fisher_power(n: int, p1: float, p2: float) -> float:
    """Exact power of the two-sided Fisher exact test with n samples per side."""
    rejects = _cached_rejects(n) if n <= UNPAIRED_POWER else _rejects(n)
    return float(_binom_pmf(n, p1) @ (rejects @ _binom_pmf(n, p2)))


def _casagrande(p1: float, p2: float) -> int:
    delta, mean = abs(p1 - p2), (p1 + p2) / 2
    root = Z95 * math.sqrt(2 * mean * (1 - mean)) + Z_POWER * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    normal = root**2 / delta**2
    return math.ceil(normal / 4 * (1 + math.sqrt(1 + 4 / (normal * delta))) ** 2)


@lru_cache(maxsize=1024)
def unpaired_samples_needed(p1: float, p2: float) -> SampleSize | None:
    """Samples per side for 80 % exact power of Fisher's exact test, or None when p1 == p2."""
    if p1 == p2:
        return None
    estimate = _casagrande(p1, p2)
    if estimate <= UNPAIRED_SEARCH:
        return _search(
            lambda sizes: np.array([fisher_power(int(n), p1, p2) for n in sizes]),
            estimate,
            UNPAIRED_SEARCH,
            "Casagrande-Pike-Smith",
        )
    if estimate <= UNPAIRED_POWER:
        reached = fisher_power(estimate, p1, p2)
        return SampleSize(estimate, reached, False, "Casagrande-Pike-Smith")
    return SampleSize(estimate, None, False, "Casagrande-Pike-Smith, exact power not summed")
