"""Bad data shared by the cells is found before the first cell starts: one line naming the file
and line (or the key and folder), exit 2, no cell run (harness/runner/preflight.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from harness.runner.preflight import shared_inputs

from .conftest import REPO


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _image(path: Path) -> str:
    Image.new("L", (8, 8), 128).save(path)
    return path.name


def answer_is_a_number(tmp: Path) -> tuple[dict, str]:
    image = _image(tmp / "a.png")
    rows = [{"image": image, "question": "q?", "answer": "1"}] * 2
    rows[1] = {"image": image, "question": "q?", "answer": 123456}
    path = _jsonl(tmp / "train.jsonl", rows)
    return _data(path), f"{path}:2: field 'answer' must be a string, got int"


def image_is_a_directory(tmp: Path) -> tuple[dict, str]:
    (tmp / "imgs").mkdir()
    path = _jsonl(tmp / "train.jsonl", [{"image": "imgs", "question": "q?", "answer": "1"}])
    return _data(path), f"{path}:1: image is not a file: {tmp / 'imgs'}"


def image_is_not_an_image(tmp: Path) -> tuple[dict, str]:
    (tmp / "notes.png").write_text("not a picture")
    path = _jsonl(tmp / "train.jsonl", [{"image": "notes.png", "question": "q?", "answer": "1"}])
    return _data(path), f"{path}:1: cannot read image {tmp / 'notes.png'}"


def model_folder_missing(tmp: Path) -> tuple[dict, str]:
    missing = tmp / "models" / "gone"
    model = {"model": {"name": "hf-causal-lm", "path": str(missing)}}
    return model, f"`model.path` {missing}: no such folder"


def _data(path: Path) -> dict:
    return {"data": {"kind": "jsonl", "train_path": str(path), "val_path": str(path)}}


@pytest.mark.parametrize(
    "case", [answer_is_a_number, image_is_a_directory, image_is_not_an_image, model_folder_missing]
)
def test_bad_shared_input_is_one_line_and_exit_2_before_any_cell_runs(tmp_path, case):
    base, expected = case(tmp_path)
    base["runtime"] = {"threads": 1}
    matrix = tmp_path / "bad.yaml"
    matrix.write_text(yaml.safe_dump({"name": "bad", "base": base, "matrix": {"seed": [0, 1]}}))
    store = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "run_matrix.py", str(matrix), "--store", str(store), "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"error: {matrix}: ") and expected in lines[0]
    assert "2 cell(s) use it; no cell was started" in lines[0]
    assert not (store / "bad").exists() and done.stdout == ""  # no cell ran, nothing written


def test_good_inputs_pass_and_each_file_and_image_is_read_once(tmp_path, monkeypatch):
    """Two cells sharing one good file: checked once; a hub id is left to the cell."""
    from harness.runner.matrix import build_matrix

    image = _image(tmp_path / "a.png")
    path = _jsonl(tmp_path / "d.jsonl", [{"image": image, "question": "q?", "answer": "1"}] * 1)
    base = {**_data(path), "model": {"name": "hf-causal-lm", "path": "org/model"}}
    matrix = build_matrix({"base": base, "matrix": {"seed": [0, 1]}}, "m.yaml", [])
    calls: list[str] = []
    import harness.runner.preflight as preflight

    real = preflight.check_dataset
    monkeypatch.setattr(preflight, "check_dataset", lambda p, s: calls.append(p) or real(p, s))
    shared_inputs(matrix.cells, False, "m.yaml")
    assert calls == [str(path)]
