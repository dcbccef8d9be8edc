"""The training budget: the learning-rate schedule by step only, the shortfall text of a cell
that did not train its budget, and shipped matrices whose budget is steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cell.train import lr_at
from harness.contracts.config import TrainConfig
from harness.contracts.schema import budget_shortfall
from harness.runner.matrix import load_matrix

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_warmup_then_cosine_to_the_floor():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert lr_at(cfg, 1) == pytest.approx(1e-4)
    assert lr_at(cfg, 10) == pytest.approx(1e-3)
    assert lr_at(cfg, 60) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half way down
    assert lr_at(cfg, 110) == pytest.approx(1e-4)
    assert lr_at(cfg, 500) == pytest.approx(1e-4)  # never below the floor


def test_the_schedule_never_depends_on_time():
    """A time cap must not change the learning rate: runs stay reproducible on a busy machine."""
    capped = TrainConfig(lr=1e-3, warmup_steps=10, max_steps=100, max_seconds=5.0)
    free = TrainConfig(lr=1e-3, warmup_steps=10, max_steps=100)
    assert [lr_at(capped, s) for s in range(1, 120)] == [lr_at(free, s) for s in range(1, 120)]


def _summary(outcome="completed", **train) -> dict:
    return {"outcome": outcome, "train": train}


@pytest.mark.parametrize(
    ("summary", "planned", "text"),
    [
        (
            _summary(steps=241, steps_planned=800, stop_reason="time_cap"),
            None,
            "time cap at 241/800 steps",
        ),
        (_summary(steps=800, steps_planned=800, stop_reason="budget"), None, None),
        # a store written before stop_reason: steps done vs the config's train.max_steps
        (_summary(steps=241), 800, "241/800 steps"),
        (_summary(steps=800), 800, None),
        (_summary(steps=241), None, None),  # nothing to compare with
        # the stored budget wins over the caller's fallback
        (_summary(steps=300, steps_planned=300, stop_reason="budget"), 800, None),
        (_summary(stop_reason="time_cap"), None, "time cap"),
        # a cell that did not complete is judged by its outcome
        (_summary("timeout", steps=241, steps_planned=800, stop_reason="timeout"), None, None),
        (_summary("diverged", steps=12), 800, None),
        ({"outcome": "failed"}, 800, None),
    ],
)
def test_budget_shortfall(summary, planned, text):
    assert budget_shortfall(summary, planned) == text


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_matrices_budget_in_steps_not_seconds(path):
    """A time cap that can bind makes results depend on the machine (issue 9): none is shipped."""
    for cell in load_matrix(path).cells:
        assert cell.config["train"]["max_seconds"] is None, cell.cell_id
        assert cell.config["runtime"]["timeout_s"] is not None  # the safety net stays
