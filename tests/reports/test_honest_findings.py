"""Issue 9 on real stores: each figure the issue quotes, as the report now words it."""

from __future__ import annotations

from pathlib import Path

from reports import load_results, render_markdown, write_report
from reports.findings import findings, recommendations
from tests.reports.synthetic import pattern, write_cell

CAUSAL = {"attention.mode": "causal"}
BIDIR = {"attention.mode": "prefix_bidirectional"}


def _texts(store: Path, kind: str) -> list[str]:
    return [f.text for f in findings(load_results(store)) if f.kind == kind]


def _pair(root: Path, a: list[bool], b: list[bool], paired: bool = True, **kw) -> Path:
    store = root / "pair"
    write_cell(store, "a", CAUSAL, correct=a, **kw)
    write_cell(store, "b", BIDIR, correct=b)
    if not paired:
        (store / "b" / "predictions.jsonl").unlink()
    return store


def _first(k: int, n: int) -> list[bool]:
    return [i < k for i in range(n)]


def test_zero_and_full_cells_report_with_plots(tmp_path):
    """0/12 and 10/10 crashed the report (negative error bars from Wilson bounds one ulp off)."""
    store = tmp_path / "ends"
    write_cell(store, "zero", CAUSAL, correct=_first(0, 12))
    write_cell(store, "full", BIDIR, correct=_first(10, 10))
    text = write_report(store).read_text(encoding="utf-8")
    assert "| 0/12 (0.0%) | [0.0%, 24.2%] |" in text
    assert "| 10/10 (100.0%) | [72.2%, 100.0%] |" in text
    assert (store / "EXPERIMENTS_plots" / "accuracy.png").stat().st_size > 1000


def test_fisher_is_exact_above_400_samples(tmp_path):
    """0/1 vs 320/400 was "beats, Fisher p = 0.047" (a z-test); exact Fisher gives 0.202."""
    store = tmp_path / "s"
    write_cell(store, "a", CAUSAL, correct=_first(0, 1))
    write_cell(store, "b", BIDIR, correct=_first(320, 400))
    (store / "b" / "predictions.jsonl").unlink()
    (text,) = _texts(store, "accuracy")
    assert "beats" not in text and "Fisher exact p = 0.202" in text and "n = 1 vs 400" in text


def test_two_percent_vs_zero_at_200_is_not_a_win(tmp_path):
    store = tmp_path / "s"
    write_cell(store, "a", CAUSAL, correct=_first(4, 200))
    write_cell(store, "b", BIDIR, correct=_first(0, 201))
    (store / "b" / "predictions.jsonl").unlink()
    (text,) = _texts(store, "accuracy")
    assert "beats" not in text and "Fisher exact p = 0.061" in text
    assert "95% CI [-0.2, +5.0] pts (Newcombe)" in text  # contains 0, as p says


def test_interval_agrees_with_mcnemar_for_5_vs_0_discordant(tmp_path):
    """Was: "no detectable difference ... 95% CI [+3.1, +42.4] pts, McNemar p = 0.062"."""
    (text,) = _texts(_pair(tmp_path, _first(10, 20), _first(5, 20)), "accuracy")
    assert "no detectable difference at n = 20" in text
    assert (
        "95% CI [-1.1, +25.0] pts (exact, conditional on the 5 samples where they disagree)" in text
    )
    assert "McNemar exact p = 0.062" in text


def test_identical_pairs_say_so(tmp_path):
    (text,) = _texts(_pair(tmp_path, _first(7, 20), _first(7, 20)), "accuracy")
    assert "identical on all 20 samples, McNemar exact p = 1.000" in text


def _repeats(root: Path, a: list[list[bool]], b: list[list[bool]], paired: bool = True) -> Path:
    store = root / "rep"
    for seed, (ca, cb) in enumerate(zip(a, b, strict=True)):
        write_cell(store, f"a{seed}", {**CAUSAL, "seed": seed}, repeat=seed, correct=ca)
        write_cell(store, f"b{seed}", {**BIDIR, "seed": seed}, repeat=seed, correct=cb)
        if not paired:
            (store / f"b{seed}" / "predictions.jsonl").unlink()
    return store


def test_identical_repeats_are_not_pooled_into_a_win(tmp_path):
    """Three identical repeats of 12/20 vs 8/20 were one McNemar on n = 60, p = 0.023, a win."""
    a = _first(12, 20)
    b = [i < 6 or i in (12, 13) for i in range(20)]  # 6 vs 2 discordant: p = 0.289 alone
    store = _repeats(tmp_path, [a] * 3, [b] * 3)
    (text,) = _texts(store, "accuracy")
    assert "no detectable difference over 3 seeds (n = 20 per seed" in text
    assert "each of the 20 samples counted once" in text and "sign-flip test p = 0.289" in text
    assert "the same gap in all 3 seeds (no seed variance observed)" in text
    assert "beats" not in render_markdown(load_results(store))
    assert recommendations(findings(load_results(store)))[0].startswith("None can be made")


def test_a_gap_that_holds_over_samples_and_seeds_is_a_win(tmp_path):
    a = [_first(17, 20), _first(18, 20), _first(16, 20)]
    b = [_first(4, 20), _first(6, 20), _first(2, 20)]
    (text,) = _texts(_repeats(tmp_path, a, b), "accuracy")
    assert "**causal beats prefix_bidirectional** over 3 seeds" in text
    assert "sign-flip test p < 0.001" in text
    assert "across seeds (seed variance, on these samples): 95% CI [+" in text


def test_repeats_without_predictions_are_not_tested_over_samples(tmp_path):
    a = [_first(17, 20), _first(18, 20)]
    b = [_first(4, 20), _first(6, 20)]
    (text,) = _texts(_repeats(tmp_path, a, b, paired=False), "accuracy")
    assert "across samples: not tested" in text and "beats" not in text


def test_sample_size_hint_uses_the_tests_power(tmp_path):
    """Was "about 1 samples per cell" for 3/3 vs 0/3, and 1,562 for 7 vs 2 of 100; then (issue
    22) "about 281" from Connor's formula, which has 77 % power there: exact McNemar needs 303."""
    (text,) = _texts(_pair(tmp_path / "p", _first(3, 3), _first(0, 3)), "accuracy")
    assert "McNemar exact reaches 80% power from 6 paired samples: 100.0%, exact power" in text
    (text,) = _texts(_pair(tmp_path / "u", _first(3, 3), _first(0, 3), paired=False), "accuracy")
    assert "Fisher exact reaches 80% power from 4 samples per side: 100.0%, exact power" in text
    a = _first(50, 100)
    b = [i < 43 or i in (50, 51) for i in range(100)]  # 7 vs 2 discordant
    (text,) = _texts(_pair(tmp_path / "c", a, b), "accuracy")
    assert "McNemar exact reaches 80% power from 303 paired samples: 80.1%, exact power" in text
    assert "samples per cell" not in text


def test_a_time_capped_cell_is_a_budget_confound_not_a_win(tmp_path):
    """A cell stopped by train.max_seconds at 241 of 800 steps was compared and called a win."""
    store = _pair(
        tmp_path,
        pattern(40, 200, "a"),
        pattern(150, 200, "b"),
        steps=241,
        planned_steps=800,
        stop_reason="time_cap",
    )
    assert _texts(store, "accuracy") == []
    (text,) = _texts(store, "confounded")
    assert "**confounded by the training budget**" in text
    assert "(`a`: time cap at 241/800 steps)" in text and "never called a win" in text
    outcomes = _texts(store, "outcomes")
    assert outcomes[0] == "2 cells: 1 completed; 1 completed, time cap."
    assert outcomes[1] == "`a` (attention.mode=causal): **completed, time cap at 241/800 steps**."
    report = render_markdown(load_results(store))
    assert "beats" not in report and "Prefer" not in report
    assert "| **completed, time cap at 241/800 steps** |" in report
    assert "1. None can be made" in report and "2. Rerun `a` until it trains its full" in report
    assert "comparisons with it are confounded until then" in report


def test_old_stores_are_flagged_from_the_configs_max_steps(tmp_path):
    """Summaries written before steps_planned/stop_reason: judged against train.max_steps."""
    full = tmp_path / "full"
    write_cell(full, "a", CAUSAL, correct=pattern(40, 200, "a"), steps=241, legacy=True)
    write_cell(full, "b", BIDIR, correct=pattern(150, 200, "b"), legacy=True)
    assert _texts(full, "confounded") == []  # max_steps = 241 = steps: trained its budget
    short = tmp_path / "short"  # the short cell is not the first (whose config is always read)
    write_cell(short, "a", CAUSAL, correct=pattern(40, 200, "a"), legacy=True)
    write_cell(
        short, "b", BIDIR, correct=pattern(150, 200, "b"), steps=241, planned_steps=800, legacy=True
    )
    (text,) = _texts(short, "confounded")
    assert "(`b`: 241/800 steps)" in text
    assert _texts(short, "outcomes")[0] == "2 cells: 1 completed; 1 completed, short of budget."


def test_scores_on_the_validation_split_say_so(tmp_path):
    store = tmp_path / "s"
    val = {"test_is_val": True, "scored_weights": "best"}
    write_cell(store, "a", CAUSAL, correct=pattern(15, 40, "a"), scoring=val)
    write_cell(store, "b", BIDIR, correct=pattern(30, 40, "b"), scoring=val)
    (text,) = _texts(store, "accuracy")
    assert "All 2 runs compared here are scored on the validation split that selected" in text
    report = render_markdown(load_results(store))
    assert "**Not every score is held out**" in report
    assert "| validation split that chose the step |" in report


def test_final_weights_say_so(tmp_path):
    store = tmp_path / "s"
    write_cell(
        store, "a", CAUSAL, correct=pattern(15, 40, "a"), scoring={"scored_weights": "final"}
    )
    write_cell(store, "b", BIDIR, correct=pattern(30, 40, "b"), scoring={"test_is_val": False})
    (text,) = _texts(store, "accuracy")
    assert "1 of the 2 runs are scored with their final weights" in text
    assert "validation split" not in text
    report = render_markdown(load_results(store))
    assert "| final weights |" in report and "| held-out test split |" in report


def test_held_out_scores_add_no_note(tmp_path):
    scoring = {"test_is_val": False, "scored_weights": "best"}
    store = tmp_path / "s"
    write_cell(store, "a", CAUSAL, correct=pattern(15, 40, "a"), scoring=scoring)
    write_cell(store, "b", BIDIR, correct=pattern(30, 40, "b"), scoring=scoring)
    report = render_markdown(load_results(store))
    assert "scored on" not in report and "validation split" not in report
