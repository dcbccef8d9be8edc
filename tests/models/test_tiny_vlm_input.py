"""tiny-vlm's opt-in input knobs (``model.stem_stages``, ``model.input_norm``): the defaults build
the model they built before, the knobs change what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from harness.contracts.config import ConfigError, ModelConfig, parse_cell_config
from harness.models.tiny_vlm import TinyVLM

SMALL = {"hidden_size": 32, "intermediate_size": 64, "num_heads": 4, "image_tokens": 12}


def _model(**kw) -> TinyVLM:
    torch.manual_seed(0)
    return TinyVLM(ModelConfig(**{**SMALL, **kw}))


def test_the_default_stem_is_the_three_stage_stem_it_was():
    stem = _model().vision.stem
    convs = [m for m in stem if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 32), (32, 64), (64, 128)]
    assert len(stem) == 9 and isinstance(stem[-1], torch.nn.MaxPool2d)


def test_more_stages_pool_a_larger_input_to_the_same_tokens():
    model = _model(stem_stages=4, input_height=64, input_width=192)
    convs = [m for m in model.vision.stem if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 128]
    feats = model.vision(torch.zeros(2, 1, 64, 192))
    assert feats.shape == (2, 12, 128)
    assert model.vision.stem(torch.zeros(1, 1, 64, 192)).shape[-2:] == (4, 12)


def test_fixed_scaling_is_unchanged_and_per_image_stretches_each_image():
    images = np.stack([np.full((32, 96), 100, np.uint8), np.zeros((32, 96), np.uint8)])
    images[0, 0, 0], images[0, 1, 1] = 200, 240
    fixed = _model().preprocess_arrays(images)
    assert torch.equal(fixed, torch.from_numpy(images).float().unsqueeze(1) / 127.5 - 1.0)
    stretched = _model(input_norm="per_image").preprocess_arrays(images)
    assert stretched[0].min() == -1.0 and stretched[0].max() == 1.0
    assert torch.equal(stretched[1], torch.full((1, 32, 96), -1.0))  # flat: no division by 0


@pytest.mark.parametrize("norm", ["fixed", "per_image"])
def test_the_pil_and_array_paths_agree(norm):
    rng = np.random.default_rng(0)
    images = rng.integers(90, 250, size=(3, 32, 96), dtype=np.uint8)
    model = _model(input_norm=norm)
    one_by_one = torch.stack([model.preprocess(Image.fromarray(a)) for a in images])
    assert torch.equal(model.preprocess_arrays(images), one_by_one)


def test_bad_stem_values_are_one_line():
    for model, message in (
        ({"stem_stages": 0}, "`model.stem_stages` must be > 0, got 0"),
        ({"input_norm": "zscore"}, "`model.input_norm`"),
        ({"input_height": -1}, "`model.input_height` must be > 0, got -1"),
        (
            {"stem_stages": 6},
            "`model.stem_stages` (6) halves the input 32x96 to nothing; use at most 5",
        ),
    ):
        with pytest.raises(ConfigError) as info:
            parse_cell_config({"model": model})
        assert message in str(info.value) and "\n" not in str(info.value)
