"""Statistics against known values (R / textbook) and the figures quoted in issue 9."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reports import power, stats


def test_wilson_interval_known_value():
    lo, hi = stats.wilson_interval(5, 20)
    assert lo == pytest.approx(0.1119, abs=1e-4)
    assert hi == pytest.approx(0.4687, abs=1e-4)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("n", [1, 3, 10, 12, 500, 10_000])
def test_wilson_is_exactly_0_and_1_at_the_ends(n):
    """Issue 9: 0/12 gave a lower bound of 2.8e-17 and 10/10 an upper of 0.9999999999999999,
    which turned into negative error bars and a crashed report."""
    assert stats.wilson_interval(0, n)[0] == 0.0
    assert stats.wilson_interval(n, n)[1] == 1.0
    for k in (0, n):
        lo, hi = stats.wilson_interval(k, n)
        assert lo <= k / n <= hi


def test_mcnemar_exact():
    assert stats.mcnemar_exact(0, 7) == pytest.approx(2 / 2**7)
    assert stats.mcnemar_exact(5, 4) == 1.0
    assert stats.mcnemar_exact(0, 0) == 1.0
    ref = min(1.0, 2 * sum(math.comb(250, i) for i in range(101)) / 2**250)
    assert stats.mcnemar_exact(100, 150) == pytest.approx(ref, rel=1e-12)
    # exact above 400 discordant pairs too (no normal approximation anywhere)
    ref = 2 * sum(math.comb(700, i) for i in range(301)) / 2**700
    assert stats.mcnemar_exact(300, 400) == pytest.approx(ref, rel=1e-10)


def test_fisher_exact_matches_r():
    # R: fisher.test(matrix(c(3, 7, 9, 1), 2))$p.value == 0.01978
    assert stats.fisher_exact(3, 10, 9, 10) == pytest.approx(0.019766, abs=1e-5)
    assert stats.fisher_exact(5, 20, 4, 20) == pytest.approx(1.0)
    assert stats.fisher_exact(180, 200, 120, 200) < 1e-9


def test_fisher_is_exact_above_400_samples():
    """Issue 9: above 400 samples a pooled z-test was labelled Fisher (p = 0.047 and 0.044)."""
    assert stats.fisher_exact(0, 1, 320, 400) == pytest.approx(0.202, abs=5e-4)
    assert stats.fisher_exact(4, 200, 0, 201) == pytest.approx(0.061, abs=5e-4)
    assert not stats.compare_unpaired(0, 1, 320, 400).significant
    assert not stats.compare_unpaired(4, 200, 0, 201).significant


def test_mcnemar_interval_agrees_with_its_test_for_5_vs_0():
    """Issue 9: 5 vs 0 discordant at n = 20 said "no detectable difference" with a 95% CI of
    [+3.1, +42.4] pts; the exact interval contains 0, as p = 0.0625 says."""
    cmp = stats.compare_paired(5, 0, 20, 10, 5)
    assert cmp.p_value == pytest.approx(0.0625)
    lo, hi = cmp.ci
    assert lo < 0 < hi and hi == pytest.approx(0.25)
    assert cmp.agrees and not cmp.significant
    # one more discordant sample and both say so
    cmp = stats.compare_paired(6, 0, 20, 11, 5)
    assert cmp.p_value == pytest.approx(2 / 64) and cmp.ci[0] > 0 and cmp.significant


def test_newcombe_and_clopper_pearson():
    lo, hi = stats.newcombe_interval(180, 200, 120, 200)
    assert 0 < lo < 0.3 < hi
    assert stats.clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025**0.1))
    assert stats.clopper_pearson(10, 10) == (pytest.approx(0.025**0.1), 1.0)


def test_sign_flip_test_is_mcnemar_for_single_runs_and_ignores_copies():
    assert stats.sign_flip_test([1] * 6 + [-1] * 2 + [0] * 12) == pytest.approx(
        stats.mcnemar_exact(6, 2)
    )
    # three identical repeats: every difference is 3 times as large, the test is unchanged
    assert stats.sign_flip_test([3] * 6 + [-3] * 2) == pytest.approx(0.289, abs=5e-4)
    assert stats.sign_flip_test([0, 0]) == 1.0
    # the 16 sign flips of (2, 1, 1, -1) sum to 5, 3, 3, 3, 1, 1, 1, -1 and their negatives:
    # |sum| >= 3 in 8 of 16
    assert stats.sign_flip_test([2, 1, 1, -1]) == pytest.approx(0.5, rel=1e-12)


def test_t_test_and_mean_std():
    assert stats.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert stats.mean_std([0.5]) == (0.5, 0.0)
    p, (lo, hi) = stats.t_test([0.2, 0.2, 0.2])
    assert p == 0.0 and lo == hi == pytest.approx(0.2)
    assert stats.t_test([0.0, 0.0])[0] == 1.0
    p, (lo, hi) = stats.t_test([1.0, 2.0, 3.0])  # t = 2 sqrt(3), df = 2
    assert p == pytest.approx(0.0742, abs=1e-4)
    half = 4.302653 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert (lo, hi) == (pytest.approx(2 - half), pytest.approx(2 + half))


def test_identical_repeats_are_not_a_win():
    """Issue 9: three identical repeats of 12/20 vs 8/20 pooled into McNemar on n = 60 gave
    p = 0.023; over seeds the samples test keeps one repeat's p = 0.289."""
    cmp = stats.compare_seeds([0.6] * 3, [0.4] * 3, [20] * 3, [3] * 6 + [-3] * 2 + [0] * 12)
    assert cmp.sample_p == pytest.approx(0.289, abs=5e-4)
    assert cmp.seed_p == 0.0 and cmp.seed_ci == (pytest.approx(0.2), pytest.approx(0.2))
    assert not cmp.significant and cmp.samples == 20
    assert cmp.diff == pytest.approx(0.2)


def test_seed_comparison_needs_both_tests():
    consistent = [3] * 15 + [0] * 5
    cmp = stats.compare_seeds([0.9, 0.85, 0.8], [0.2, 0.3, 0.1], [20] * 3, consistent)
    assert cmp.sample_p < 0.001 and cmp.seed_p < 0.01 and cmp.significant
    noisy = stats.compare_seeds([0.9, 0.2, 0.85], [0.2, 0.8, 0.1], [20] * 3, consistent)
    assert noisy.seed_p > 0.05 and not noisy.significant
    unpaired = stats.compare_seeds([0.9, 0.85], [0.2, 0.3], [20, 20], None)
    assert unpaired.sample_p is None and not unpaired.significant


def test_sample_size_uses_the_tests_power():
    """Issue 9: "about 1 samples per cell" for 3/3 vs 0/3; 1,562 for 7 vs 2 discordant of 100
    where a McNemar calculation gives about 281."""
    hint = power.paired_samples_needed(7, 2, 100)
    assert (hint.n, hint.smallest, hint.method) == (303, True, "exact power")  # not Connor's 281
    # 3/3 vs 0/3 paired: exact McNemar rejects only with 6 discordant samples (2 / 2^6 < 0.05)
    assert power.paired_samples_needed(3, 0, 3) == power.SampleSize(6, 1.0, True, "exact power")
    # unpaired: 4/4 vs 0/4 is the first Fisher table below 0.05 (p = 2 / 70)
    assert power.unpaired_samples_needed(1.0, 0.0) == power.SampleSize(4, 1.0, True, "exact power")
    assert stats.fisher_exact(4, 4, 0, 4) < 0.05 < stats.fisher_exact(3, 3, 0, 3)
    assert power.paired_samples_needed(5, 5, 100) is None
    assert power.unpaired_samples_needed(0.5, 0.5) is None


def test_exact_mcnemar_power_known_cases():
    # every sample discordant and won by A: power is 1 once 2 / 2^n < 0.05, else 0
    assert power.mcnemar_power(5, 1.0, 1.0) == 0.0
    assert (
        power.mcnemar_power(303, 0.09, 7 / 9) >= power.POWER > power.mcnemar_power(281, 0.09, 7 / 9)
    )
    assert power.mcnemar_power(6, 1.0, 1.0) == pytest.approx(1.0)
    # critical values: the largest b with 2 P(X <= b) < 0.05, X ~ Bin(m, 1/2)
    sizes = np.array([5, 6, 8, 9, 20])
    assert power.critical_values(sizes).tolist() == [-1, 0, 0, 1, 5]
