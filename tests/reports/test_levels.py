"""Issue 22 on synthetic stores with known truth: what each finding may claim, at which level.

Three stores shaped like ``experiments/attention.yaml`` (``synthetic.write_attention_store``):
one run per configuration with an A/A pair (prefix sdpa vs eager_dense: the same function), and
3 matched seeds with and without a real effect of the attention mode.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reports import load_results, render_markdown
from reports.findings import findings, recommendations
from reports.key_marks import same_function_keys
from tests.reports.synthetic import write_attention_store

CAUSAL = "mode=causal, impl=sdpa"
SDPA = "mode=prefix_bidirectional, impl=sdpa"
EAGER = "mode=prefix_bidirectional, impl=eager_dense"
AA_HEAD = (
    f"`attention`: {SDPA} vs {EAGER}: **A/A pair, the measured run-to-run noise floor, not a "
    "finding**: they differ only in `attention.impl`, which must not change the function "
    "learned: every implementation computes the same attention mask, equal up to float "
    "rounding; only speed and memory differ; "
)


def _texts(store: Path, kind: str) -> list[str]:
    return [f.text for f in findings(load_results(store)) if f.kind == kind]


@pytest.fixture
def single_run(tmp_path) -> Path:
    """The issue's demo: 93.2% causal, 69.6% prefix sdpa, 83.4% prefix eager_dense, once each."""
    return write_attention_store(tmp_path / "single", [[466], [348], [417]])


@pytest.fixture
def real_effect(tmp_path) -> Path:
    """Causal is about 10 pts better in every seed; the A/A pair agrees within 0.4 pts."""
    scores = [[450, 455, 445], [400, 402, 399], [401, 400, 400]]
    return write_attention_store(tmp_path / "effect", scores)


@pytest.fixture
def no_effect(tmp_path) -> Path:
    """No consistent direction between seeds; the A/A pair's runs are 22 pts apart."""
    scores = [[420, 380, 400], [300, 420, 360], [410, 310, 350]]
    return write_attention_store(tmp_path / "none", scores)


def test_the_key_table_marks_attention_impl_only():
    assert list(same_function_keys()) == ["attention.impl"]


def test_single_runs_claim_nothing_about_configurations(single_run):
    store = load_results(single_run)
    assert store.same_function == same_function_keys()
    report = render_markdown(store)
    assert "beats" not in report and "Prefer" not in report
    first, second = _texts(single_run, "accuracy")
    assert first.startswith(
        f"`attention`: the {CAUSAL} run scored higher than the {SDPA} run on the same 500 "
        "samples: 93.2% vs 69.6%, +23.6 pts"
    )
    assert (
        "One training run each: a difference between these two trained runs, not shown for the "
        f"configurations (no seed variance measured), so it is not a win of {CAUSAL}." in first
    )
    assert first.endswith(
        "A/A noise floor: 13.8 pts between two runs of the same function in this matrix; this "
        "gap of 23.6 pts is larger, but with one run each no seed variance is measured."
    )
    assert second.endswith("this gap of 9.8 pts is within it.")
    assert recommendations(findings(store)) == [
        "None can be made: no comparison has matched seeds, so none is about the "
        "configurations; 2 of the 2 single-run comparisons found two runs that differ, which "
        "says nothing about their configurations (add `repeats: 3`)."
    ]


def test_a_single_run_aa_pair_is_the_noise_floor_not_a_finding(single_run):
    (text,) = _texts(single_run, "noise_floor")
    assert text == (
        f"{AA_HEAD}one run each scored 69.6% vs 83.4% on the same 500 samples, a gap of 13.8 "
        "pts (McNemar exact p < 0.001). Two runs of the same function differ this much here, "
        "so a single-run gap of this size between any two configurations may be noise."
    )
    assert not any(SDPA in t and EAGER in t for t in _texts(single_run, "accuracy"))


def test_single_run_headline(single_run):
    report = render_markdown(load_results(single_run))
    head = report[report.index("## Headline") : report.index("## Matrix")]
    assert head == (
        "## Headline\n\n"
        "- **Configuration level**: not measured: no one-axis comparison has two or more "
        "matched seeds on both sides, so no finding below is about a configuration.\n"
        "- **Run level** (one trained run per side): 2 of 2 comparisons found two runs that "
        "differ on their samples; these are about the trained runs, not their configurations, "
        "and recommend nothing.\n"
        "- **A/A noise floor**: configurations that train the same function differ by up to "
        "13.8 pts between two runs; 1 of 2 single-run gaps are within it.\n\n"
    )


def test_a_real_effect_over_seeds_is_a_configuration_win(real_effect):
    first, second = _texts(real_effect, "accuracy")
    assert first.startswith(
        f"`attention`: **{CAUSAL} beats {SDPA}** over 3 seeds (n = 500 per seed; 90.0% vs "
        "80.1% mean, +9.9 pts, per-seed gaps +10.0, +10.6, +9.2 pts)"
    )
    assert "sign-flip test p < 0.001" in first and "t-test p = 0.002" in first
    assert f"**{CAUSAL} beats {EAGER}** over 3 seeds" in second
    (text,) = _texts(real_effect, "noise_floor")
    assert text == (
        f"{AA_HEAD}over 3 seeds: 80.1% vs 80.1% mean, per-seed gaps -0.2, +0.4, -0.2 pts "
        "(largest 0.4 pts between two runs of the same function); **equivalent within ±5.0 "
        "pts** (TOST on the per-seed gaps, seed variance: p < 0.001; 90% CI [-0.6, +0.6] pts)."
    )
    store = load_results(real_effect)
    assert recommendations(findings(store)) == [
        "Prefer `attention=mode=causal, impl=sdpa`: significantly better over 3 matched seeds "
        "in 2 of 2 seed-level comparisons along `attention`, never significantly worse."
    ]
    report = render_markdown(store)
    assert (
        "- **Configuration level** (over 3 matched seeds, the test over samples and the test "
        "over seeds both p < 0.05): 2 of 2 one-axis comparisons show a win: `attention`: "
        f"{CAUSAL} beats {SDPA} (+9.9 pts, 3 seeds); `attention`: {CAUSAL} beats {EAGER} "
        "(+9.9 pts, 3 seeds)." in report
    )
    assert (
        "- **A/A noise floor**: configurations that train the same function differ by up to "
        "0.4 pts between two runs (over seeds: equivalent)." in report
    )
    assert (
        "- **Seed spread** (mean ± std over seeds, range): best attention=mode=causal, "
        "impl=sdpa: 90.0% ± 1.0% (89.0%–91.0%, 3 seeds)" in report
    )


def test_no_effect_over_seeds_is_no_win_and_the_aa_pair_is_not_shown_equivalent(no_effect):
    first, second = _texts(no_effect, "accuracy")
    assert first.startswith(f"`attention`: {CAUSAL} vs {SDPA}: no detectable difference over 3")
    assert "t-test p = 0.478; a win needs both tests below 0.05" in first
    assert "no detectable difference over 3 seeds" in second
    (text,) = _texts(no_effect, "noise_floor")
    assert "per-seed gaps -22.0, +22.0, +2.0 pts (largest 22.0 pts" in text
    assert text.endswith(
        "**not shown equivalent within ±5.0 pts** (TOST on the per-seed gaps, seed variance: "
        "p = 0.383; 90% CI [-36.5, +37.8] pts)."
    )
    store = load_results(no_effect)
    assert recommendations(findings(store)) == [
        "None can be made at this n: no configuration-level comparison (matched seeds, both "
        "tests) was significant."
    ]
    report = render_markdown(store)
    assert "beats" not in report and "Prefer" not in report
    assert (
        "- **Configuration level** (over 3 matched seeds): no difference shown in 2 one-axis "
        "comparisons" in report
    )
    assert "(over seeds: not shown equivalent)" in report


def test_an_aa_pair_that_differs_over_seeds_says_to_check_the_implementations(tmp_path):
    store = write_attention_store(
        tmp_path / "s", [[450, 452, 448], [400, 402, 399], [450, 452, 449]]
    )
    (text,) = _texts(store, "noise_floor")
    assert "**not shown equivalent within ±5.0 pts**" in text
    assert text.endswith(
        "The seed-level test finds a difference (p < 0.001): check that the implementations "
        "compute the same function."
    )


def test_the_seeds_plot_shows_every_seed_and_the_seed_level_interval(no_effect, single_run):
    from reports.plot_seeds import seeds_figure
    from reports.stats import t_test

    assert seeds_figure(load_results(single_run)) is None  # one run each: no seed interval
    store = load_results(no_effect)
    (ax,) = seeds_figure(store).axes
    dots = {line.get_gid(): list(line.get_xdata()) for line in ax.lines if line.get_gid()}
    assert dots == {
        "causal·sdpa": [84.0, 76.0, 80.0],
        "prefix·sdpa": [60.0, 84.0, 72.0],
        "prefix·eager": [82.0, 62.0, 70.0],
    }
    _, (lo, hi) = t_test([84.0, 76.0, 80.0])
    bars = [c for c in ax.collections if len(c.get_segments()) == 1]
    ends = sorted(
        tuple(round(float(x), 6) for x in seg[:, 0]) for c in bars for seg in c.get_segments()
    )
    assert (round(lo, 6), round(hi, 6)) in ends
    rendered = render_markdown(store, {"seeds": "p/seeds.png"})
    assert "![Exact match over seeds per configuration](p/seeds.png)" in rendered


def test_sample_size_hints_above_the_search_say_about_with_the_power_reached():
    from reports import stats, wording

    paired = wording.accuracy_text("x", "a", "b", stats.compare_paired(40, 33, 500, 300, 293), "")
    assert paired.endswith(
        "(at this gap and disagreement rate, 80% power needs about 6,024 paired samples: "
        "McNemar, Connor's formula, then exact power in 1% steps, 80.33% power there)."
    )
    small = wording.accuracy_text("x", "a", "b", stats.compare_unpaired(11, 20, 6, 20), "")
    assert small.endswith(
        "80% power needs about 68 samples per side: Fisher, Casagrande-Pike-Smith, 79.69% "
        "power there)."
    )
    large = wording.accuracy_text("x", "a", "b", stats.compare_unpaired(300, 500, 290, 500), "")
    assert large.endswith(
        "80% power needs about 9,592 samples per side: Fisher, Casagrande-Pike-Smith, exact "
        "power not summed)."
    )


def test_an_aa_pair_short_of_its_budget_is_a_budget_confound(tmp_path):
    from tests.reports.synthetic import ATTENTION_OPTIONS, pattern, write_cell

    store = tmp_path / "short"
    for i, option in enumerate(ATTENTION_OPTIONS[1:]):
        write_cell(store, f"c{i}", option, correct=pattern(400, 500, str(i)), steps=20,
                   planned_steps=40 if i else 20, stop_reason="time_cap" if i else "budget")  # fmt: skip
    assert _texts(store, "noise_floor") == []
    (text,) = _texts(store, "confounded")
    assert "**confounded by the training budget**" in text
