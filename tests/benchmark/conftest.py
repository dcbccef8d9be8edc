"""Fixtures of the benchmark tests: one saved tiny base with its tokenizer, data files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark.builders import code_problems, qa_jsonl, save_base, text_file


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory) -> Path:
    return save_base(tmp_path_factory.mktemp("bench-base") / "tiny-llama")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bench-data")
    qa_jsonl(d / "qa.jsonl")
    text_file(d / "text.txt")
    code_problems(d / "code.jsonl")
    return d
