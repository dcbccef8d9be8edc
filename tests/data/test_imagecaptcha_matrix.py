"""End to end: a tiny matrix of imagecaptcha cells through run_matrix.py, the cells and the report
(a few steps each: the scores mean nothing, the plumbing is what is checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MATRIX = {
    "name": "tiny_styles",
    "description": "Tiny imagecaptcha cells, scored on their own style and on the harness style.",
    "base": {
        "data": {"kind": "captcha", "style": "imagecaptcha", "train_count": 16}
        | {"val_count": 4, "test_count": 4},
        "model": {"name": "tiny-vlm", "hidden_size": 32, "num_layers": 1, "num_heads": 2}
        | {"intermediate_size": 64, "image_tokens": 12, "image_rows": 2, "input_height": 48}
        | {"input_width": 128, "input_norm": "per_image"},
        "train": {"max_steps": 3, "micro_batch": 4, "warmup_steps": 1, "eval_every": 3},
        "eval": {"batch_size": 4, "max_new_tokens": 8},
        "checkpoint": {"save": "none"},
        "runtime": {"device": "cpu", "threads": 1, "timeout_s": 120},
    },
    "matrix": {"data.test_style": [None, "harness"]},
}


def test_a_tiny_imagecaptcha_matrix_runs_and_reports(tmp_path: Path) -> None:
    matrix = tmp_path / "tiny_styles.yaml"
    matrix.write_text(yaml.safe_dump(MATRIX), encoding="utf-8")
    store = tmp_path / "runs"
    flags = ("--quiet", "--set", f"data.cache_dir={tmp_path / 'data'}", "--report")
    done = subprocess.run(
        [sys.executable, "run_matrix.py", str(matrix), "--store", str(store), *flags],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    cells = sorted(p for p in (store / "tiny_styles").iterdir() if (p / "summary.json").is_file())
    assert len(cells) == 2
    ids_by_test_style = {}
    for cell in cells:
        summary = json.loads((cell / "summary.json").read_text())
        assert summary["outcome"] == "completed" and summary["train"]["steps"] == 3
        config = yaml.safe_load((cell / "config.yaml").read_text())
        assert config["data"]["style"] == "imagecaptcha"
        assert (config["data"]["image_width"], config["data"]["image_height"]) == (200, 200)
        predictions = (cell / "predictions.jsonl").read_text().splitlines()
        ids = sorted(json.loads(line)["id"] for line in predictions)
        ids_by_test_style[config["data"]["test_style"]] = ids
    assert ids_by_test_style[None] == [f"imagecaptcha-test-{i}" for i in range(4)]
    assert ids_by_test_style["harness"] == [f"test:{i}" for i in range(1, 5)]
    cached = sorted(p.name.split("-n")[0] for p in (tmp_path / "data").iterdir())
    assert cached == ["imagecaptcha-test", "imagecaptcha-train", "imagecaptcha-val", "test"]
    report = (store / "tiny_styles" / "EXPERIMENTS.md").read_text()
    assert "`data.test_style`" in report and "- `data.style`: `imagecaptcha`" in report
