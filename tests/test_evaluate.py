"""Evaluation encodes each prompt once: the teacher-forced pass's cache, cut back to the prompt,
is the prefill of greedy decoding. Same predictions and scores as the two-pass path, in every
attention mode; batches whose prompts differ in length take the two-pass path."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from harness.cell.encoding import EncodedSet, load_splits
from harness.cell.evaluate import evaluate
from harness.models import build_model
from tests.cell_helpers import tiny_config

MODES = [
    ("causal", "sdpa"),
    ("prefix_bidirectional", "sdpa"),
    ("prefix_bidirectional", "eager_dense"),
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("captcha")


def _scores(model, data, single_pass: bool, monkeypatch):
    monkeypatch.setattr(model, "reuses_prompt_cache", single_pass)
    calls = {"one": 0}
    real = model.score_and_generate

    def counted(*args, **kwargs):
        calls["one"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "score_and_generate", counted)
    ev = evaluate(model, data, torch.device("cpu"), batch_size=4, max_new_tokens=8)
    return ev, calls["one"]


@pytest.mark.parametrize(("mode", "impl"), MODES)
def test_single_pass_equals_two_passes(cache, mode, impl, monkeypatch):
    cfg = tiny_config(cache)
    torch.manual_seed(0)
    model, _ = build_model(cfg.model)
    model.set_attention(mode, impl)
    data = load_splits(cfg.data).encode(model)[1]
    one, n_one = _scores(model, data, True, monkeypatch)
    two, n_two = _scores(model, data, False, monkeypatch)
    assert (n_one, n_two) == (2, 0)  # 8 samples, batches of 4
    assert [p.prediction for p in one.predictions] == [p.prediction for p in two.predictions]
    assert all(len(p.prediction) for p in one.predictions)  # something was generated
    assert one.token_accuracy == two.token_accuracy
    assert one.loss == pytest.approx(two.loss, rel=1e-5)


def test_prompts_of_different_lengths_take_the_two_pass_path(cache, monkeypatch):
    cfg = tiny_config(cache)
    torch.manual_seed(0)
    model, _ = build_model(cfg.model)
    model.set_attention("causal", "sdpa")
    splits = load_splits(cfg.data)
    records = [replace(r, question=r.question + "?" * (i % 2)) for i, r in enumerate(splits.val)]
    data = EncodedSet(records, model, splits.images["val"])
    ev, n_one = _scores(model, data, True, monkeypatch)
    assert n_one == 0 and ev.n == len(records)
