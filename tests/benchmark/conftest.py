"""Fixtures of the benchmark tests: one saved tiny base with its tokenizer, data files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.benchmark.builders import code_problems, qa_jsonl, save_base, text_file

# Module- and session-scoped fixtures here train and run models before the per-test autouse
# fixture (tests/conftest.py) sets one thread; two threads on a busy 2-core machine are ~20x
# slower than one.
torch.set_num_threads(1)


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


@pytest.fixture(autouse=True)
def result_cache(tmp_path, monkeypatch) -> Path:
    """Each test its own result cache file (never the user's ~/.cache)."""
    path = tmp_path / "result-cache.sqlite"
    monkeypatch.setenv("HARNESS_BENCHMARK_CACHE", str(path))
    return path
