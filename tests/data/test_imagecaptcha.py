"""The `imagecaptcha` style (the PyPI `captcha` package's captchas): determinism, sizes, cache key,
validation, and that the harness style is what it was."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
from pathlib import Path

import captcha.image
import numpy as np
import pytest
from PIL import Image

from harness.contracts.config import ConfigError, DataConfig, parse_cell_config
from harness.data.captcha import cache_dir_name, ensure_captcha_split, generate_split
from harness.data.imagecaptcha import draw_imagecaptcha
from harness.data.jsonl import read_records

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_ARGS = ("--split", "test", "--count", "2", "--style", "imagecaptcha", "--seed", "9")


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_two_draws_with_one_seed_are_byte_identical(tmp_path: Path) -> None:
    a = generate_split(tmp_path / "a", "train", 4, seed=3, style="imagecaptcha")
    b = generate_split(tmp_path / "b", "train", 4, seed=3, style="imagecaptcha")
    assert _files(a.parent) == _files(b.parent) and len(_files(a.parent)) == 5
    c = generate_split(tmp_path / "c", "train", 4, seed=4, style="imagecaptcha")
    assert _files(c.parent) != _files(a.parent)


def test_the_package_gets_its_own_secrets_module_back() -> None:
    draw_imagecaptcha(0, "train", 0, 6, 200, 200)
    assert captcha.image.secrets is secrets


def test_same_image_in_another_process() -> None:
    """String seeds hash through SHA-512, not ``hash()``: no PYTHONHASHSEED dependence."""
    code = (
        "import hashlib; from harness.data.imagecaptcha import draw_imagecaptcha; "
        "a, im = draw_imagecaptcha(5, 'test', 7, 6, 200, 200); "
        "print(a, hashlib.sha256(im.tobytes()).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout.split()
    answer, image = draw_imagecaptcha(5, "test", 7, 6, 200, 200)
    assert out == [answer, hashlib.sha256(image.tobytes()).hexdigest()]


def test_the_style_draws_the_seeds_size_by_default_and_any_size_on_request(tmp_path: Path):
    jsonl = generate_split(tmp_path / "d", "val", 2, style="imagecaptcha")
    rec = read_records(jsonl)[0]
    with Image.open(rec.image_path) as im:
        assert im.size == (200, 200) and im.mode == "L"
    assert len(rec.answer) == 6 and rec.answer.isdigit()
    assert rec.id == "imagecaptcha-val-0"  # not the harness style's "val:1": never paired
    jsonl = generate_split(tmp_path / "e", "val", 2, width=160, height=60, style="imagecaptcha")
    with Image.open(read_records(jsonl)[0].image_path) as im:
        assert im.size == (160, 60)


def test_the_image_shows_ink_not_a_blank() -> None:
    _, image = draw_imagecaptcha(0, "train", 0, 6, 200, 200)
    pixels = np.asarray(image)
    assert pixels.min() < 200 < pixels.max()


def test_the_cache_key_names_the_style_and_keeps_harness_names() -> None:
    args = ("train", 6000, 0, 6, 96, 32, "What is the text in this captcha image?")
    harness = cache_dir_name(*args)
    # the name every harness-style cache has had since GENERATOR_VERSION 1
    assert harness == "train-n6000-s0-d6-96x32-" + harness.rsplit("-", 1)[1]
    assert cache_dir_name(*args, style="harness") == harness
    other = cache_dir_name(*args, style="imagecaptcha")
    assert other.startswith("imagecaptcha-train-n6000-s0-d6-96x32-") and other != harness
    big = cache_dir_name("train", 6000, 0, 6, 200, 200, args[-1], style="imagecaptcha")
    assert big != other


def test_the_cache_holds_both_styles_side_by_side(tmp_path: Path) -> None:
    a = ensure_captcha_split(tmp_path, "test", 3)
    b = ensure_captcha_split(tmp_path, "test", 3, style="imagecaptcha")
    assert a.parent != b.parent
    assert np.load(b.with_name("test.pixels.npy")).shape == (3, 200, 200)
    assert np.load(a.with_name("test.pixels.npy")).shape == (3, 32, 96)
    assert ensure_captcha_split(tmp_path, "test", 3, style="imagecaptcha") == b


def test_an_unknown_style_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="style 'wavy' must be one of harness, imagecaptcha"):
        generate_split(tmp_path, "train", 1, style="wavy")


def test_the_config_resolves_each_styles_default_size() -> None:
    assert (DataConfig().image_width, DataConfig().image_height) == (96, 32)
    seed = DataConfig(style="imagecaptcha")
    assert (seed.image_width, seed.image_height) == (200, 200)
    assert DataConfig(style="imagecaptcha", image_height=80).image_height == 80
    cfg = parse_cell_config({"data": {"style": "imagecaptcha", "image_width": None}})
    assert (cfg.data.image_width, cfg.data.image_height) == (200, 200)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"style": "wavy"}, "`data.style`"),
        ({"test_style": "seed"}, "`data.test_style`"),
        ({"style": "imagecaptcha", "image_width": 0}, "`data.image_width` must be > 0, got 0"),
        (
            {
                "kind": "jsonl",
                "train_path": "t.jsonl",
                "val_path": "v.jsonl",
                "test_style": "harness",
            },
            "`data.style`/`data.test_style` choose generated captchas (data.kind: captcha)",
        ),
    ],
)
def test_bad_style_values_are_one_line(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_cell_config({"data": data})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_run_matrix_rejects_a_bad_style_before_anything_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "run_matrix.py",
            "experiments/smoke.yaml",
            "--store",
            str(tmp_path / "runs"),
            "--set",
            "data.style=wavy",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "data.style" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


def test_the_cli_draws_the_style(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "harness.data.captcha", "--output-dir", str(out), *CLI_ARGS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()]
    answer, image = draw_imagecaptcha(9, "test", 0, 6, 200, 200)
    assert rows[0]["answer"] == answer
    assert np.array_equal(np.asarray(Image.open(out / rows[0]["image"])), np.asarray(image))
