"""Helpers for runner tests: a fake cell command and tiny matrices."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

FAKE_CELL = Path(__file__).with_name("fake_cell.py")
REPO = Path(__file__).resolve().parents[2]
FAKE_COMMAND = f"{sys.executable} {FAKE_CELL}"


def write_matrix(
    path: Path, behaviours: list[str], steps: int = 3, step_ms: int = 1, **runtime: object
) -> Path:
    """A matrix whose cells run the fake cell with the given behaviours (data.question)."""
    raw = {
        "name": "fake",
        "base": {
            "train": {"max_steps": steps},
            "eval": {"max_new_tokens": step_ms},
            "runtime": runtime,
        },
        "matrix": {"data.question": behaviours},
    }
    path.write_text("# python run_matrix.py experiments/fake.yaml\n" + yaml.safe_dump(raw))
    return path


@pytest.fixture
def fake_command() -> list[str]:
    return [sys.executable, str(FAKE_CELL)]
