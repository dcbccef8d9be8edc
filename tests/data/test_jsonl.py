"""JSONL reader: aliases, paths, text-only records, and one DataError per kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from harness.data.jsonl import DataError, Record, load_image, read_records


def _png(path: Path, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (4, 3), 0).save(path)
    return path


def _jsonl(path: Path, *lines: object) -> Path:
    text = "".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines)
    path.write_text(text)
    return path


def test_seed_format_relative_and_absolute_paths(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "a.png")
    other = _png(tmp_path / "elsewhere" / "b.png")
    path = _jsonl(
        tmp_path / "train.jsonl",
        {"image": "images/a.png", "question": "Q1", "answer": "A1"},
        "",  # blank lines are skipped
        {"image_path": str(other), "question": "Q2", "answer": "A2", "id": "custom"},
    )
    first, second = read_records(path)
    assert first == Record("train:1", tmp_path / "images" / "a.png", "Q1", "A1")
    assert first.image_path is not None and first.image_path.is_absolute()
    assert second == Record("custom", other, "Q2", "A2")
    assert first.source == f"{path}:1"


def test_relative_jsonl_path_resolves_against_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _png(tmp_path / "data" / "images" / "a.png")
    _jsonl(tmp_path / "data" / "d.jsonl", {"image": "images/a.png", "question": "q", "answer": "a"})
    monkeypatch.chdir(tmp_path)
    (record,) = read_records("data/d.jsonl")
    assert record.image_path == tmp_path / "data" / "images" / "a.png"


def test_prompt_response_aliases_and_text_only(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "lm.jsonl",
        {"prompt": "2+2=", "response": "4"},
        {"question": "Hi", "answer": "Hello", "image": None, "id": 7},
    )
    assert read_records(path) == [
        Record("lm:1", None, "2+2=", "4"),
        Record("7", None, "Hi", "Hello"),
    ]


BAD_LINES = [
    ("{not json", "invalid JSON"),
    ('["a", "list"]', "expected a JSON object, got list"),
    ({"answer": "a"}, "missing field 'question' or 'prompt'"),
    ({"question": "q"}, "missing field 'answer' or 'response'"),
    ({"question": "q", "answer": 42}, "'answer' must be a string, got int"),
    ({"question": ["q"], "answer": "a"}, "'question' must be a string, got list"),
    ({"image": 3, "question": "q", "answer": "a"}, "'image' must be a string"),
    ({"question": "q", "prompt": "p", "answer": "a"}, "both 'question' and 'prompt'"),
    ({"image": "missing.png", "question": "q", "answer": "a"}, "image not found"),
    ({"image": "", "question": "q", "answer": "a"}, "image path is empty"),
    ({"image": ".", "question": "q", "answer": "a"}, "image is not a file"),
    ({"id": 1.5, "question": "q", "answer": "a"}, "'id' must be a string or integer"),
]


@pytest.mark.parametrize(("bad", "expected"), BAD_LINES)
def test_bad_record_names_file_and_line(tmp_path: Path, bad: object, expected: str) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", {"question": "q", "answer": "a"}, "", bad)
    with pytest.raises(DataError, match=r"bad\.jsonl:3: ") as info:
        read_records(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_duplicate_id(tmp_path: Path) -> None:
    row = {"id": "x", "question": "q", "answer": "a"}
    path = _jsonl(tmp_path / "dup.jsonl", row, row)
    with pytest.raises(DataError, match=r"dup.jsonl:2: duplicate id 'x' \(first on line 1\)"):
        read_records(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "not found"), ("", "no records"), ("\n  \n", "no records"), (b"\xff\n", "UTF-8")],
)
def test_bad_file(tmp_path: Path, content: str | bytes | None, expected: str) -> None:
    path = tmp_path / "set.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=r"set\.jsonl") as info:
        read_records(path)
    assert expected in str(info.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        read_records(tmp_path)


@pytest.mark.parametrize(("mode", "expected"), [("L", "L"), ("RGB", "RGB"), ("RGBA", "RGB")])
def test_load_image_modes(tmp_path: Path, mode: str, expected: str) -> None:
    img = load_image(_png(tmp_path / "x.png", mode), "d.jsonl:1")
    assert (img.mode, img.size) == (expected, (4, 3))
    img.getpixel((0, 0))  # fully loaded, usable after the file is closed


def test_load_image_corrupt_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    path = _jsonl(tmp_path / "c.jsonl", {"image": "bad.png", "question": "q", "answer": "a"})
    (record,) = read_records(path)  # existence is checked, decoding is lazy
    with pytest.raises(DataError, match=r"c\.jsonl:1: cannot read image .*bad\.png"):
        load_image(record.image_path, record.source)


def test_load_image_truncated(tmp_path: Path) -> None:
    good = tmp_path / "t.png"
    Image.effect_noise((64, 64), 50).save(good)  # noise: the pixel data does not compress away
    good.write_bytes(good.read_bytes()[:-1000])
    with pytest.raises(DataError, match=r"t\.png"):
        load_image(good, "t.jsonl:5")
