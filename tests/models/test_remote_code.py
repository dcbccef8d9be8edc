"""A model folder whose config.json ``auto_map`` points at code in the folder (like Moondream2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cell.run import run_cell
from harness.contracts.config import ModelConfig, parse_cell_config
from harness.models.hf import ModelLoadError
from harness.models.hf_vlm import build_hf_vlm
from tests.models.helpers import vlm_cell

CONFIGURATION = """
from transformers import LlavaConfig


class CustomVLMConfig(LlavaConfig):
    model_type = "custom_vlm"
"""
MODELING = """
from transformers import LlavaForConditionalGeneration

from .configuration_custom import CustomVLMConfig


class CustomVLMForConditionalGeneration(LlavaForConditionalGeneration):
    config_class = CustomVLMConfig
"""


@pytest.fixture(scope="module")
def remote_dir(tiny_dirs, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("remote") / "custom-vlm"
    shutil.copytree(tiny_dirs["llava"], path)
    (path / "configuration_custom.py").write_text(CONFIGURATION)
    (path / "modeling_custom.py").write_text(MODELING)
    config = json.loads((path / "config.json").read_text())
    config["model_type"] = "custom_vlm"
    config["architectures"] = ["CustomVLMForConditionalGeneration"]
    config["auto_map"] = {
        "AutoConfig": "configuration_custom.CustomVLMConfig",
        "AutoModelForImageTextToText": "modeling_custom.CustomVLMForConditionalGeneration",
    }
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_remote_code_is_refused_without_the_flag_in_one_line(remote_dir):
    with pytest.raises(ModelLoadError, match=r"auto_map.*modeling_custom\.py.*trust_remote_code"):
        build_hf_vlm(ModelConfig(name="hf-vlm", path=str(remote_dir)))
    cfg = {"model": {"name": "hf-vlm", "path": str(remote_dir)}}
    out = Path(remote_dir).parent / "refused"
    assert run_cell(parse_cell_config(cfg), out) == 1
    err = json.loads((out / "summary.json").read_text())["error"]
    assert err["type"] == "ModelLoadError" and "\n" not in err["message"]


def test_remote_code_trains_with_the_flag(remote_dir, tmp_path):
    model = build_hf_vlm(ModelConfig(name="hf-vlm", path=str(remote_dir), trust_remote_code=True))
    assert type(model.base_vlm()).__name__ == "CustomVLMForConditionalGeneration"
    assert model.family.name == "custom" and model.vision is not None
    cfg = vlm_cell(
        tmp_path / "data",
        remote_dir,
        steps=2,
        **{
            "model.trust_remote_code": True,
            "attention.mode": "image_bidirectional",
            "eval.max_new_tokens": 3,
        },
    )
    out = tmp_path / "cell"
    assert run_cell(parse_cell_config(cfg), out) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "completed" and summary["metrics"]["n"] == 4
