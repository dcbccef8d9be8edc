"""The result cache: a second checkpoint benchmarked on the same base computes nothing on the
base's side (its model calls are counted), more samples compute only the new ones, a changed
generation setting or window misses, ``--no_cache`` reads and writes nothing, and an entry is
never used for another key."""

from __future__ import annotations

import json
import sqlite3

import pytest

from harness.benchmark import sides
from harness.benchmark.cache import ResultCache
from harness.benchmark.cli import main
from tests.benchmark.builders import SEED000_ALPHA, write_peft_adapter, write_seed000_file


@pytest.fixture
def calls(monkeypatch) -> list:
    """``(label, TextLM)`` of every model evaluated, to count its forward and generate calls."""
    seen: list = []
    original = sides.EvalModel.text

    def text(self):
        lm = original(self)
        if all(lm is not other for _, other in seen):
            seen.append((self.label, lm))
        return lm

    monkeypatch.setattr(sides.EvalModel, "text", text)
    return seen


def _counts(seen: list, label: str) -> dict[str, int]:
    out = {"forward": 0, "generate": 0}
    for name, lm in seen:
        if name == label:
            out = {k: out[k] + lm.calls[k] for k in out}
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, base_dir) -> dict[str, list[str]]:
    d = tmp_path_factory.mktemp("two")
    write_peft_adapter(base_dir, d / "adapter")
    lora = write_seed000_file(d / "lora.safetensors", base_dir)
    return {
        "peft": ["--trained_model", str(d / "adapter")],
        "lora": [
            "--trained_model",
            str(lora),
            "--base_model",
            str(base_dir),
            "--lora_alpha",
            str(SEED000_ALPHA),
        ],
    }


def _run(tmp_path, *args: str) -> tuple[dict, str]:
    out = tmp_path / "out" / "r.md"
    assert main([*args, "--quiet", "--output", str(out), "--max_new_tokens", "3"]) == 0
    return json.loads(out.with_suffix(".json").read_text()), out.read_text()


def test_a_second_checkpoint_on_the_same_base_computes_no_base_sample(
    tmp_path, checkpoints, data_dir, calls, result_cache
):
    qa = ["--data", str(data_dir / "qa.jsonl")]
    first, _ = _run(tmp_path, *checkpoints["peft"], *qa)
    cache = first["execution"]["cache"]
    assert cache["path"] == str(result_cache) and result_cache.is_file()
    assert (cache["base"]["hits"], cache["base"]["misses"]) == (0, 7)  # 6 samples + the probe
    assert _counts(calls, "base")["generate"] > 0 and _counts(calls, "base")["forward"] > 0
    calls.clear()
    second, report = _run(tmp_path, *checkpoints["lora"], *qa)
    cache = second["execution"]["cache"]
    assert (cache["base"]["hits"], cache["base"]["misses"]) == (7, 0)
    assert _counts(calls, "base") == {"forward": 0, "generate": 0}
    assert (cache["trained"]["hits"], cache["trained"]["misses"]) == (0, 7)  # another model
    assert _counts(calls, "trained")["generate"] > 0
    assert second["metrics"]["base"] == first["metrics"]["base"]
    assert [s["base"] for s in second["samples"]] == [s["base"] for s in first["samples"]]
    assert f"result cache `{result_cache}` (base 7 cached, 0 computed" in report


def test_more_samples_compute_only_the_new_ones(tmp_path, checkpoints, data_dir, calls):
    qa = [*checkpoints["peft"], "--data", str(data_dir / "qa.jsonl")]
    _run(tmp_path, *qa, "--max_samples", "3")
    res, _ = _run(tmp_path, *qa)
    for side in ("base", "trained"):  # the probe (first sample) is cached too
        assert res["execution"]["cache"][side] | {"path": None} == {
            "path": None,
            "hits": 4,
            "misses": 3,
        }


def test_a_changed_setting_misses(tmp_path, checkpoints, data_dir, calls):
    qa = [*checkpoints["peft"], "--data", str(data_dir / "qa.jsonl")]
    _run(tmp_path, *qa)
    calls.clear()
    res, _ = _run(tmp_path, *qa, "--temperature", "0.5")
    assert res["execution"]["cache"]["base"]["misses"] == 6  # the probe does not generate
    assert _counts(calls, "base")["generate"] > 0
    text = [*checkpoints["peft"], "--data", str(data_dir / "text.txt")]
    _run(tmp_path, *text, "--max_length", "8")
    res, _ = _run(tmp_path, *text, "--max_length", "8", "--stride", "4")
    assert res["execution"]["cache"]["base"]["misses"] == 3  # three paragraphs, new windows


def test_no_cache_reads_and_writes_nothing(tmp_path, checkpoints, data_dir, result_cache):
    res, report = _run(
        tmp_path, *checkpoints["peft"], "--data", str(data_dir / "qa.jsonl"), "--no_cache"
    )
    assert res["execution"]["cache"]["path"] is None and not result_cache.exists()
    assert "result cache off (--no_cache)" in report
    assert res["execution"]["batch_size"] == "auto"


def test_an_entry_is_never_used_for_another_key(tmp_path):
    cache = ResultCache(tmp_path / "c.sqlite")
    computed: list[list[int]] = []

    def compute(idx):
        computed.append(idx)
        return [{"value": i} for i in idx]

    inputs = [{"prompt": [1, 2]}, {"prompt": [3]}]
    assert cache.lookup("model-a", "qa", inputs, compute) == [{"value": 0}, {"value": 1}]
    assert cache.lookup("model-a", "qa", inputs, compute) == [{"value": 0}, {"value": 1}]
    assert computed == [[0, 1]]
    cache.lookup("model-b", "qa", inputs, compute)  # another model: all computed
    assert computed[-1] == [0, 1]
    db = sqlite3.connect(tmp_path / "c.sqlite")
    with db:  # an entry whose stored key is not the key asked for is not trusted
        db.execute("UPDATE results SET key = key || ' '")
    cache.lookup("model-a", "qa", inputs, compute)
    assert computed[-1] == [0, 1]
