"""The learning-rate schedule: warmup, cosine, by step only."""

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


def test_the_schedule_never_depends_on_time():
    """A time cap must not change the learning rate: runs stay reproducible on a busy machine."""
    capped = TrainConfig(lr=1e-3, warmup_steps=10, max_steps=100, max_seconds=5.0)
    free = TrainConfig(lr=1e-3, warmup_steps=10, max_steps=100)
    assert [lr_at(capped, s) for s in range(1, 120)] == [lr_at(free, s) for s in range(1, 120)]
