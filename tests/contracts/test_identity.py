"""A cell's id survives the keys added after stores existed (old stores resume, not rerun)."""

from __future__ import annotations

from harness.contracts.config import CellConfig, to_dict
from harness.contracts.identity import config_hash


def _before_the_new_keys(cfg: CellConfig) -> dict:
    """The dict a store written before ``data.prompt_format`` and the unset ``freeze_vision``
    default held in its config.yaml."""
    data = to_dict(cfg)
    data["data"].pop("prompt_format")
    data["model"]["freeze_vision"] = False
    return data


def test_a_tiny_vlm_cell_keeps_the_id_it_had_before_the_new_keys():
    cfg = CellConfig()
    assert cfg.model.name == "tiny-vlm" and cfg.model.freeze_vision is None
    assert config_hash(cfg) == config_hash(_before_the_new_keys(cfg))


def test_what_changes_the_function_changes_the_id():
    base = CellConfig()
    chat = to_dict(base)
    chat["data"]["prompt_format"] = "chat_template"
    assert config_hash(chat) != config_hash(base)
    # hf-vlm now freezes its tower by default: not the cell an old store trained unfrozen
    hf = to_dict(base)
    hf["model"]["name"] = "hf-vlm"
    old_hf = {**hf, "model": {**hf["model"], "freeze_vision": False}}
    frozen = {**hf, "model": {**hf["model"], "freeze_vision": True}}
    assert config_hash(hf) != config_hash(old_hf)
    assert config_hash(hf) == config_hash(frozen)


def test_the_identity_view_leaves_the_config_itself_alone():
    data = to_dict(CellConfig())
    config_hash(data)
    assert data["data"]["prompt_format"] == "seed" and data["model"]["freeze_vision"] is None
