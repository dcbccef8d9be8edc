"""Findings on hand-built stores: significance wording, confounds, repeats, memory, errors."""

from __future__ import annotations

from pathlib import Path

from conftest import two_cell_store

from reports.findings import findings, recommendations
from reports.markdown import render_markdown
from reports.results import load_results
from tests.reports.synthetic import GIB, pattern, write_cell


def _texts(store_dir: Path, kind: str) -> list[str]:
    return [f.text for f in findings(load_results(store_dir)) if f.kind == kind]


def test_5_of_20_vs_4_of_20_is_not_a_win(tmp_path):
    store = two_cell_store(tmp_path, 5, 4, 20)
    (text,) = _texts(store, "accuracy")
    assert "no detectable difference at n = 20" in text
    assert "beats" not in text
    assert "McNemar exact p = " in text
    found = findings(load_results(store))
    assert recommendations(found)[0].startswith("None can be made: no comparison has matched")
    assert "beats" not in render_markdown(load_results(store))


def test_5_of_20_vs_4_of_20_unpaired_uses_fisher(tmp_path):
    store = two_cell_store(tmp_path, 5, 4, 20, paired=False)
    (text,) = _texts(store, "accuracy")
    assert "no detectable difference at n = 20" in text and "Fisher exact p = 1.000" in text
    assert "(Newcombe)" in text


def test_180_of_200_vs_120_of_200_is_about_the_two_runs(tmp_path):
    """Issue 22: with one run per configuration a significant gap is about the two trained
    runs, never a win of a configuration, and recommends nothing."""
    store = two_cell_store(tmp_path, 120, 180, 200)
    (text,) = _texts(store, "accuracy")
    assert text.startswith(
        "`attention.mode`: the prefix_bidirectional run scored higher than the causal run at "
        "train.grad_accum=8 on the same 200 samples: 90.0% vs 60.0%, +30.0 pts"
    )
    assert "McNemar exact p < 0.001" in text and "beats" not in text
    assert "95% CI [" in text and "(exact, conditional on the" in text
    assert "One training run each: a difference between these two trained runs" in text
    recs = recommendations(findings(load_results(store)))
    assert recs == [
        "None can be made: no comparison has matched seeds, so none is about the "
        "configurations; 1 of the 1 single-run comparisons found two runs that differ, which "
        "says nothing about their configurations (add `repeats: 3`)."
    ]
    assert "Prefer" not in render_markdown(load_results(store))


def test_180_vs_120_unpaired_is_about_the_two_runs(tmp_path):
    store = two_cell_store(tmp_path, 180, 120, 200, paired=False)
    (text,) = _texts(store, "accuracy")
    assert "the causal run scored higher than the prefix_bidirectional run" in text
    assert "on different samples (n = 200)" in text and "Fisher exact p < 0.001" in text
    assert "beats" not in text


def test_confound_detector_names_the_other_axis(tmp_path):
    # The seed's Experiment 1: causal with grad_accum 4 vs bidirectional with grad_accum 8.
    store = tmp_path / "seed"
    write_cell(
        store, "a", {"attention.mode": "causal", "train.grad_accum": 4}, correct=pattern(3, 10, "a")
    )
    write_cell(
        store,
        "b",
        {"attention.mode": "prefix_bidirectional", "train.grad_accum": 8},
        correct=pattern(2, 10, "b"),
    )
    assert _texts(store, "accuracy") == []
    confounded = _texts(store, "confounded")
    assert any(
        "`attention.mode`" in t and "confounded: also differs in `train.grad_accum`" in t
        for t in confounded
    )
    assert any(
        "`train.grad_accum`" in t and "also differs in `attention.mode`" in t for t in confounded
    )
    recs = recommendations(findings(load_results(store)))
    assert any("Run attention.mode=prefix_bidirectional, train.grad_accum=4" in r for r in recs)


def test_single_axis_pair_is_not_confounded(tmp_path):
    store = two_cell_store(tmp_path, 5, 4, 20)
    assert _texts(store, "confounded") == []


def test_oom_side_is_not_comparable(tmp_path):
    store = tmp_path / "s"
    write_cell(store, "a", {"attention.mode": "causal"}, correct=pattern(5, 20))
    write_cell(
        store,
        "b",
        {"attention.mode": "prefix_bidirectional"},
        outcome="oom",
        oom={"phase": "train", "in_use_bytes": GIB, "budget_bytes": 2 * GIB, "message": "x"},
    )
    (text,) = _texts(store, "not_comparable")
    assert "not comparable" in text and "prefix_bidirectional: OOM" in text
    budget = _texts(store, "budget")
    assert budget[0].startswith("Memory budget 2.00 GiB: 1 of 2 cells exceeded it")
    assert any(
        "ran out of memory in 1 pair(s) where causal completed" in t
        for t in _texts(store, "memory")
    )


def test_repeats_are_mean_and_std_with_values(tmp_path):
    store = tmp_path / "s"
    for seed, k in enumerate((10, 12, 14)):
        write_cell(
            store,
            f"a{seed}",
            {"attention.mode": "causal", "seed": seed},
            repeat=seed,
            correct=pattern(k, 20, str(seed)),
        )
        write_cell(
            store,
            f"b{seed}",
            {"attention.mode": "prefix_bidirectional", "seed": seed},
            repeat=seed,
            correct=pattern(k, 20, f"b{seed}"),
        )
    (first, _) = _texts(store, "repeats")
    assert first == (
        "attention.mode=causal: exact match 60.0% ± 10.0% "
        "(mean ± std over 3 repeats: 50.0%, 60.0%, 70.0%)."
    )
    (text,) = _texts(store, "accuracy")
    assert "over 3 seeds (n = 20 per seed" in text and "n = 60" not in text
    assert "per-seed gaps +0.0, +0.0, +0.0 pts" in text
    assert _texts(store, "single_run") == []  # every comparison is over seeds


def test_memory_ratio_between_modes(tmp_path):
    store = tmp_path / "s"
    write_cell(store, "a", {"attention.impl": "sdpa"}, correct=pattern(5, 20), peak_train=GIB)
    write_cell(
        store,
        "b",
        {"attention.impl": "eager_dense"},
        correct=pattern(5, 20),
        peak_train=3 * GIB,
        budget=2 * GIB,
    )
    (text,) = _texts(store, "memory")
    assert (
        text
        == "`attention.impl`: train peak memory eager_dense / sdpa = 3.00x (3.00 GiB vs 1.00 GiB)."
    )
    assert "1 of 2 cells exceeded it" in _texts(store, "budget")[0]


def test_error_kinds(tmp_path):
    store = two_cell_store(tmp_path, 5, 4, 20)
    (text,) = _texts(store, "errors")
    assert text.startswith("Most common errors over 31 wrong predictions: off by 1 char")


def test_paired_axis_is_compared_as_one_axis(tmp_path):
    """grad_accum and max_steps vary together (equal samples): one axis, not a confound."""
    import json

    store = tmp_path / "paired"
    for cid, acc, steps, k in (("a4", 4, 700, 180), ("a8", 8, 350, 120)):
        write_cell(
            store, cid, {"train.grad_accum": acc, "train.max_steps": steps}, correct=pattern(k, 200)
        )
    options = [
        {"train.grad_accum": 4, "train.max_steps": 700},
        {"train.grad_accum": 8, "train.max_steps": 350},
    ]
    meta = {
        "name": "demo",
        "axes": {"accumulation": options},
        "paired": {"accumulation": ["train.grad_accum", "train.max_steps"]},
    }
    (store / "matrix.json").write_text(json.dumps(meta))
    loaded = load_results(store)
    assert loaded.axes == ("accumulation",)
    assert _texts(store, "confounded") == []
    (text,) = _texts(store, "accuracy")
    assert "the grad_accum=4, max_steps=700 run scored higher than the grad_accum=8" in text


def test_single_runs_come_with_a_variance_caveat(tmp_path):
    store = two_cell_store(tmp_path, 180, 120, 200)
    (text,) = _texts(store, "single_run")
    assert "trained once" in text and "repeats: 3" in text
    assert "## Findings" in render_markdown(load_results(store))
    assert "Run-to-run variance" in render_markdown(load_results(store))
