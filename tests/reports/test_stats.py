"""Statistics against known values (R / textbook)."""

from __future__ import annotations

import math

import pytest

from reports import stats


def test_wilson_interval_known_value():
    lo, hi = stats.wilson_interval(5, 20)
    assert lo == pytest.approx(0.1119, abs=1e-4)
    assert hi == pytest.approx(0.4687, abs=1e-4)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    assert stats.wilson_interval(0, 10)[0] == 0.0


def test_mcnemar_exact():
    assert stats.mcnemar_exact(0, 7) == pytest.approx(2 / 2**7)
    assert stats.mcnemar_exact(5, 4) == 1.0
    assert stats.mcnemar_exact(0, 0) == 1.0
    ref = min(1.0, 2 * sum(math.comb(250, i) for i in range(101)) / 2**250)
    assert stats.mcnemar_exact(100, 150) == pytest.approx(ref)
    assert stats.mcnemar_exact(300, 400) < 0.001  # normal approximation branch


def test_fisher_exact_matches_r():
    # R: fisher.test(matrix(c(3, 7, 9, 1), 2))$p.value == 0.01978
    assert stats.fisher_exact(3, 10, 9, 10) == pytest.approx(0.019766, abs=1e-5)
    assert stats.fisher_exact(5, 20, 4, 20) == pytest.approx(1.0)
    assert stats.fisher_exact(180, 200, 120, 200) < 1e-9


def test_two_proportion_z_and_intervals():
    assert stats.two_proportion_z(500, 1000, 500, 1000) == pytest.approx(1.0)
    lo, hi = stats.newcombe_interval(180, 200, 120, 200)
    assert lo < 0.3 < hi and lo > 0
    lo, hi = stats.paired_interval(10, 2, 50)
    assert lo < 8 / 50 < hi


def test_mean_std_and_samples_needed():
    assert stats.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert stats.mean_std([0.5]) == (0.5, 0.0)
    assert stats.samples_needed(0.25, 0.20) > 1000
    assert stats.samples_needed(0.5, 0.5) is None


def test_comparison_significance():
    assert not stats.compare_unpaired(5, 20, 4, 20).significant
    assert stats.compare_unpaired(180, 200, 120, 200).significant
    assert stats.compare_paired(40, 2, 100, 80, 42).test == "McNemar"
