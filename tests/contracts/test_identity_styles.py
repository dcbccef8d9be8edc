"""The captcha-style keys (``data.style``, ``data.test_style``, ``model.stem_stages``,
``model.input_norm``) and the style-sized images keep every old cell's id."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from harness.contracts.identity import config_hash
from harness.runner.matrix import load_matrix

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
OLD_MATRICES = ("smoke.yaml", "attention.yaml", "attention_memory.yaml", "grad_accum.yaml")
NEW_KEYS = {"data": ("style", "test_style"), "model": ("stem_stages", "input_norm")}


def _as_stored_before(config: dict) -> dict:
    """The config.yaml a store held before these keys existed."""
    old = copy.deepcopy(config)
    for section, keys in NEW_KEYS.items():
        for key in keys:
            old[section].pop(key)
    return old


@pytest.mark.parametrize("name", OLD_MATRICES)
def test_shipped_matrices_keep_their_cell_ids(name):
    for cell in load_matrix(EXPERIMENTS / name).cells:
        assert (cell.config["data"]["image_width"], cell.config["data"]["image_height"]) == (96, 32)
        assert cell.cell_id == config_hash(_as_stored_before(cell.config))


def test_the_new_styles_and_knobs_are_new_cells():
    cell = next(iter(load_matrix(EXPERIMENTS / "smoke.yaml").cells))
    for section, key, value in (
        ("data", "style", "imagecaptcha"),
        ("data", "test_style", "harness"),
        ("model", "stem_stages", 4),
        ("model", "input_norm", "per_image"),
    ):
        changed = copy.deepcopy(cell.config)
        changed[section][key] = value
        assert config_hash(changed) != cell.cell_id, key
