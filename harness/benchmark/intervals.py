"""The 95 % intervals of one model's scores (the paired comparison is ``compare``)."""

from __future__ import annotations

import math

from reports.stats import Z95, mean_std, wilson_interval


def side_interval(k: int, n: int) -> list[float]:
    """95 % Wilson interval of one model's k/n."""
    return list(wilson_interval(k, n))


def mean_interval(values: list[float]) -> tuple[float, list[float]]:
    """Mean and its 95 % normal interval over samples (``[mean, mean]`` for one sample)."""
    mean, sd = mean_std(values)
    half = Z95 * sd / math.sqrt(len(values)) if values else math.nan
    return mean, [mean - half, mean + half]
