"""Recommendations when configuration-level wins exist but no one value is best: synthetic
stores with known truth, 3 matched seeds, every comparison's direction set by construction."""

from __future__ import annotations

from pathlib import Path

from reports import load_results, render_markdown
from reports.findings import findings, recommendations
from tests.reports.synthetic import pattern, write_cell

N = 500


def _store(root: Path, scores: dict[tuple, list[int]], keys: tuple[str, ...]) -> Path:
    """One cell per configuration (values of ``keys``) and seed: ``scores[values][seed]`` of N."""
    for i, (values, per_seed) in enumerate(scores.items()):
        for seed, k in enumerate(per_seed):
            cell_id = f"c{i}s{seed}"
            axes = {**dict(zip(keys, values, strict=True)), "seed": seed}
            write_cell(root, cell_id, axes, correct=pattern(k, N, cell_id), repeat=seed)
    return root


def test_an_interaction_gives_no_single_best_value_on_either_axis(tmp_path):
    """Causal is far better at grad_accum 4 and far worse at 8, in every seed: each value of
    each axis wins somewhere and loses somewhere, so neither axis has a value to prefer."""
    scores = {
        ("causal", 4): [450, 455, 445],
        ("prefix_bidirectional", 4): [300, 310, 290],
        ("causal", 8): [300, 295, 305],
        ("prefix_bidirectional", 8): [450, 445, 455],
    }
    store = load_results(_store(tmp_path / "s", scores, ("attention.mode", "train.grad_accum")))
    found = findings(store)
    wins = [f for f in found if f.kind == "accuracy" and f.claim]
    assert len(wins) == 4 and all(f.runs == 3 for f in wins)
    assert recommendations(found, store) == [
        "`attention.mode`: no single best value (significant wins over 3 seeds for causal, "
        "prefix_bidirectional, depending on the other settings).",
        "`train.grad_accum`: no single best value (significant wins over 3 seeds for 4, 8, "
        "depending on the other settings).",
    ]
    report = render_markdown(store)
    assert "Prefer" not in report
    assert "`attention.mode`: no single best value" in report.split("## Recommendations")[1]


def test_without_an_interaction_each_axis_has_a_value_to_prefer(tmp_path):
    """The control: the same shape with causal better at both grad_accum values (and 4 better
    than 8 at both modes): each axis has a value to prefer."""
    scores = {
        ("causal", 4): [450, 455, 445],
        ("prefix_bidirectional", 4): [300, 310, 290],
        ("causal", 8): [300, 295, 305],
        ("prefix_bidirectional", 8): [200, 205, 195],
    }
    store = load_results(_store(tmp_path / "s", scores, ("attention.mode", "train.grad_accum")))
    recs = recommendations(findings(store), store)
    assert recs[0].startswith(
        "Prefer `attention.mode=causal`: significantly better over 3 matched seeds in 2 of 2 "
        "seed-level comparisons along `attention.mode`, never significantly worse."
    )
    assert recs[1].startswith("Prefer `train.grad_accum=4`")


def test_two_unbeaten_values_are_no_single_best_and_not_said_to_depend_on_other_settings(
    tmp_path,
):
    """One axis: lr 1e-3 and 2e-3 both beat 3e-3 in every seed and do not differ from each
    other; there are no other settings, so neither is preferred and no interaction is named."""
    scores = {(0.001,): [450, 455, 445], (0.002,): [452, 447, 450], (0.003,): [300, 310, 290]}
    store = load_results(_store(tmp_path / "s", scores, ("train.lr",)))
    assert recommendations(findings(store), store) == [
        "`train.lr`: no single best value: 0.001, 0.002 each significantly better than another "
        "value over 3 matched seeds and never significantly worse; no difference between them "
        "is shown."
    ]
