"""Synthetic captcha generator: determinism, format, CLI and the concurrent cache."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from harness.data import captcha
from harness.data.captcha import DEFAULT_QUESTION, ensure_captcha_split, generate_split
from harness.data.jsonl import read_records

REPO_ROOT = Path(__file__).resolve().parents[2]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _answers(jsonl: Path) -> list[str]:
    return [json.loads(line)["answer"] for line in jsonl.read_text().splitlines()]


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.data.captcha", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a = generate_split(tmp_path / "a", "train", 8, seed=3)
    b = generate_split(tmp_path / "b", "train", 8, seed=3)
    assert _files(a.parent) == _files(b.parent)
    assert len(_files(a.parent)) == 9  # 8 PNGs + the JSONL


def test_seed_and_split_change_the_data(tmp_path: Path) -> None:
    base = _answers(generate_split(tmp_path / "a", "train", 8, seed=0))
    assert _answers(generate_split(tmp_path / "b", "train", 8, seed=1)) != base
    assert _answers(generate_split(tmp_path / "c", "val", 8, seed=0)) != base


def test_smaller_count_is_a_prefix(tmp_path: Path) -> None:
    small = _answers(generate_split(tmp_path / "a", "train", 3))
    assert _answers(generate_split(tmp_path / "b", "train", 6))[:3] == small


def test_format_size_and_answers(tmp_path: Path) -> None:
    jsonl = generate_split(tmp_path, "train", 5, digits=4, width=64, height=24)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert lines[0] == {
        "image": "images/captcha_train_00000.png",
        "question": DEFAULT_QUESTION,
        "answer": lines[0]["answer"],
    }
    for row in lines:
        assert re.fullmatch(r"\d{4}", row["answer"])
        with Image.open(jsonl.parent / row["image"]) as img:
            assert (img.size, img.mode) == ((64, 24), "L")
    assert [r.answer for r in read_records(jsonl)] == [r["answer"] for r in lines]


def test_subset_writes_first_n(tmp_path: Path) -> None:
    jsonl = generate_split(tmp_path, "train", 6, subset=2, question="Digits?")
    subset = tmp_path / "train_subset_2.jsonl"
    assert subset.read_text().splitlines() == jsonl.read_text().splitlines()[:2]
    assert read_records(subset)[0].question == "Digits?"
    with pytest.raises(ValueError, match="subset"):
        generate_split(tmp_path, "train", 6, subset=7)


@pytest.mark.parametrize("kwargs", [{"count": 0}, {"digits": 0}, {"split": "../x"}, {"width": 10}])
def test_bad_parameters(tmp_path: Path, kwargs: dict) -> None:
    args = {"split": "train", "count": 2, **kwargs}
    with pytest.raises(ValueError):
        generate_split(tmp_path, **args)


def test_cli_writes_files(tmp_path: Path) -> None:
    out = tmp_path / "captcha"
    result = _run_cli("--output-dir", str(out), "--split", "val", "--count", "4", "--subset", "2")
    assert result.returncode == 0, result.stderr
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    images = [f"images/captcha_val_{i:05d}.png" for i in range(4)]
    assert names == sorted([*images, "val.jsonl", "val_subset_2.jsonl"])


@pytest.mark.parametrize(
    "args",
    [
        ["--count", "0"],
        ["--count", "many"],
        ["--count", "3", "--subset", "5"],
        ["--count", "2", "--output-dir", "{file}/sub"],  # a regular file in the way
    ],
)
def test_cli_bad_input_exits_2_without_traceback(tmp_path: Path, args: list[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = [a.format(file=blocker) for a in args]
    if "--output-dir" not in args:
        args += ["--output-dir", str(tmp_path / "out")]
    result = _run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "error" in result.stderr


def test_ensure_generates_once_and_keys_on_params(tmp_path: Path) -> None:
    jsonl = ensure_captcha_split(tmp_path, "train", 3, seed=1)
    assert jsonl.name == "train.jsonl"
    assert jsonl.parent.name.startswith("train-n3-s1-d6-96x32-")
    mtime = jsonl.stat().st_mtime_ns
    assert ensure_captcha_split(tmp_path, "train", 3, seed=1) == jsonl
    assert jsonl.stat().st_mtime_ns == mtime
    other = ensure_captcha_split(tmp_path, "train", 3, seed=1, question="Read the digits.")
    assert other != jsonl
    assert len(read_records(jsonl)) == 3


def test_ensure_race_loser_uses_winner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Both threads must pass the "absent" check and generate before either renames.
    barrier = threading.Barrier(2, timeout=30)
    real = captcha.generate_split

    def slow_generate(*args, **kwargs):
        result = real(*args, **kwargs)
        barrier.wait()
        return result

    monkeypatch.setattr(captcha, "generate_split", slow_generate)
    results: list[Path] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(ensure_captcha_split(tmp_path, "train", 4))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results[0] == results[1]
    assert [p.name for p in tmp_path.iterdir()] == [results[0].parent.name]  # no temp dirs left
    assert len(read_records(results[0])) == 4


def test_ensure_two_processes(tmp_path: Path) -> None:
    code = (
        "import sys; from harness.data.captcha import ensure_captcha_split as e; "
        "print(e(sys.argv[1], 'train', 150))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][0] == outs[1][0]
    assert len(list(tmp_path.iterdir())) == 1
    assert len(read_records(Path(outs[0][0].strip()))) == 150
