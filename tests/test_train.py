"""The learning-rate schedule: warmup, cosine, and the time budget driving the decay."""

from __future__ import annotations

import pytest

from harness.config import TrainConfig
from harness.train import lr_at


def test_warmup_then_cosine_to_the_floor():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert lr_at(cfg, 1) == pytest.approx(1e-4)
    assert lr_at(cfg, 10) == pytest.approx(1e-3)
    assert lr_at(cfg, 60) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half way down
    assert lr_at(cfg, 110) == pytest.approx(1e-4)
    assert lr_at(cfg, 500) == pytest.approx(1e-4)  # never below the floor


def test_time_budget_drives_the_decay_when_it_ends_first():
    cfg = TrainConfig(lr=1e-3, warmup_steps=0, max_steps=10_000, max_seconds=100.0,
                      min_lr_ratio=0.0)  # fmt: skip
    assert lr_at(cfg, 5, elapsed_s=50.0) == pytest.approx(0.5e-3)
    assert lr_at(cfg, 6, elapsed_s=100.0) == pytest.approx(0.0)
    steps_only = TrainConfig(lr=1e-3, warmup_steps=0, max_steps=10_000, min_lr_ratio=0.0)
    assert lr_at(steps_only, 5, elapsed_s=50.0) == pytest.approx(1e-3, rel=1e-4)
