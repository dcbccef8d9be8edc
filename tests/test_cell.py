"""One cell, for real: tiny-vlm training, loss masking, grad accumulation, checkpoints, outcomes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from harness.cell.attention import self_check
from harness.cell.checkpoints import save_checkpoint
from harness.cell.encoding import EncodedSet, load_splits
from harness.cell.evaluate import evaluate
from harness.cell.run import run_cell
from harness.cell.threads import available_cores
from harness.cell.train import train_step
from harness.cell.trainable import setup_trainable
from harness.contracts.config import parse_cell_config
from harness.contracts.schema import budget_shortfall
from harness.contracts.store_files import read_metrics, read_predictions, read_summary
from harness.models import build_model
from harness.models.prefix_lm import IGNORE_INDEX, answer_loss
from loaders import load_checkpoint
from tests.cell_helpers import run_cell_cli, tiny_cell, tiny_config, write_text_jsonl, write_yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("captcha")


def _model_and_data(cache: Path, **overrides):
    cfg = tiny_config(cache, **overrides)
    torch.manual_seed(0)
    model, _ = build_model(cfg.model)
    model.set_attention(cfg.attention.mode, cfg.attention.impl)
    splits = load_splits(cfg.data)
    return cfg, model, EncodedSet(splits.train, model)


@pytest.mark.parametrize(
    ("mode", "impl"),
    [("causal", "sdpa"), ("prefix_bidirectional", "sdpa"), ("prefix_bidirectional", "eager_dense")],
)
def test_tiny_vlm_mask_self_check(cache, mode, impl):
    _cfg, model, _ = _model_and_data(cache, attention__mode=mode, attention__impl=impl)
    result = self_check(model.base_decoder(), mode, impl, prefix_len=model.prefix_len())
    assert result.probes > 0


def test_loss_is_on_answer_tokens_only(cache):
    _, model, data = _model_and_data(cache)
    batch = data.batch([0, 1])
    rec = data.records[0]
    labelled = batch.labels[0][batch.labels[0] != IGNORE_INDEX].tolist()
    assert labelled == model.answer_ids(rec.answer)  # the answer digits + EOS, nothing else
    assert model.tokenizer.decode(labelled, skip_special_tokens=True) == rec.answer
    # changing a prompt-position label would not change the loss: only answer positions count
    out = model(batch)
    s, n, _ = answer_loss(out.logits, batch.labels)
    assert n == sum(len(model.answer_ids(data.records[i].answer)) for i in (0, 1))
    logits = out.logits.detach().clone()
    logits[:, : model.prefix_len()] += 100.0  # garbage on prefix positions
    s2, _, _ = answer_loss(logits, batch.labels)
    assert torch.allclose(s, s2)


def _grads_after_step(model, batches, cfg) -> dict[str, torch.Tensor]:
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    train_step(model, opt, batches, cfg.train)
    return {k: before[k] - v.detach() for k, v in model.named_parameters()}


def test_grad_accum_4x1_equals_batch_of_4(cache):
    cfg, model, data = _model_and_data(cache, train__grad_clip=0.0)
    model.eval()  # no dropout; the tiny-vlm has none, but be explicit
    state = {k: v.clone() for k, v in model.state_dict().items()}
    full = _grads_after_step(model, [data.batch([0, 1, 2, 3])], cfg)
    model.load_state_dict(state)
    accum = _grads_after_step(model, [data.batch([i]) for i in range(4)], cfg)
    for name in full:
        torch.testing.assert_close(accum[name], full[name], rtol=1e-4, atol=1e-6)


def test_legacy_unscaled_accum_multiplies_the_update(cache):
    cfg, model, data = _model_and_data(cache, train__grad_clip=0.0)
    legacy = tiny_config(cache, train__grad_clip=0.0, train__legacy_unscaled_accum=True)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    scaled = _grads_after_step(model, [data.batch([i]) for i in range(4)], cfg)
    model.load_state_dict(state)
    unscaled = _grads_after_step(model, [data.batch([i]) for i in range(4)], legacy)
    name = "decoder.lm_head.weight"
    ratio = unscaled[name].norm() / scaled[name].norm()
    assert 3.9 < float(ratio) < 4.1  # equal answer lengths: exactly grad_accum times larger


def test_cell_cli_writes_the_run_store_and_loss_falls(cache, tmp_path):
    cfg = tiny_cell(
        cache, train__max_steps=30, train__eval_every=15, train__lr=3e-3, runtime__threads="auto"
    )
    out = tmp_path / "cell"
    proc = run_cell_cli(write_yaml(tmp_path / "c.yaml", cfg), out, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "predictions.jsonl", "summary.json", "ckpt"} <= names
    summary = read_summary(out / "summary.json")
    assert summary["outcome"] == "completed"
    assert summary["metrics"]["n"] == 8
    train = summary["train"]
    assert train["last_loss"] < train["first_loss"] * 0.8
    # the whole budget ran: 30 steps of 8 samples, as planned
    assert train["stop_reason"] == "budget" and train["steps"] == train["steps_planned"] == 30
    assert train["samples_seen"] == train["samples_planned"] == 240
    assert budget_shortfall(summary) is None
    # threads: auto = the cores this process may use, idle OpenMP threads sleeping (set before
    # torch loaded in the cell process, unless the environment already said otherwise)
    assert summary["provenance"]["torch_threads"] == available_cores()
    assert summary["provenance"]["omp_wait_policy"] == os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    assert summary["memory"]["train"]["peak_bytes"] > 0
    records = read_metrics(out / "metrics.jsonl")
    assert [r["split"] for r in records if r["kind"] == "eval"] == ["val", "val", "test"]
    # the best checkpoint is scored on captchas generated apart from the validation split
    m = summary["metrics"]
    assert m["scored_weights"] == "best" and m["test_is_val"] is False
    val = {r["step"]: r for r in records if r.get("split") == "val"}
    assert m["best_val"] == val[m["best_step"]]["exact_match"]
    assert m["best_val"] == max(r["exact_match"] for r in val.values())
    preds = read_predictions(out / "predictions.jsonl")
    assert len(preds) == 8 and {"id", "answer", "prediction", "correct"} <= set(preds[0])
    with safe_open(str(out / "ckpt" / "best.safetensors"), "pt") as fh:
        meta = fh.metadata()
    assert meta["format"] == "harness-full" and meta["base_model"] == "harness:tiny-vlm"
    assert json.loads(meta["model_config"])["hidden_size"] == 32


def test_full_checkpoint_reload_gives_identical_logits(cache, tmp_path):
    cfg, model, data = _model_and_data(cache)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train_step(model, opt, [data.batch([0, 1])], cfg.train)
    model.eval()
    path = save_checkpoint(model, cfg, tmp_path / "m.safetensors", step=1, metric=0.5)
    fresh, _ = build_model(cfg.model)
    fresh.set_attention(cfg.attention.mode, cfg.attention.impl)
    fresh.load_state_dict(load_file(str(path)))
    fresh.eval()
    batch = data.batch([2, 3])
    assert torch.equal(model(batch).logits, fresh(batch).logits)


def test_lora_trains_adapters_and_extra_modules_only(cache, tmp_path):
    cfg, model, data = _model_and_data(cache, train__method="lora", train__lora__r=4)
    counts = setup_trainable(model, cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or n.startswith("projector.") for n in trainable)
    assert any(n.startswith("projector.") for n in trainable)
    assert counts["trainable_params"] < counts["total_params"] / 2
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        train_step(model, opt, [data.batch([0, 1])], cfg.train)
    path = save_checkpoint(model, cfg, tmp_path / "lora.safetensors", step=2, metric=None)
    tensors = load_file(str(path))
    a = tensors["decoder.model.layers.0.self_attn.q_proj.lora_A"]
    b = tensors["decoder.model.layers.0.self_attn.q_proj.lora_B"]
    assert a.shape == (32, 4) and b.shape == (4, 32)  # seed 000 layout: A [in, r], B [r, out]
    assert "projector.0.weight" in tensors
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    assert meta["format"] == "harness-lora" and meta["lora_rank"] == "4"


def test_lora_cell_round_trips_its_best_checkpoint(cache, tmp_path, monkeypatch):
    """The weights the cell scored (its in-process model at the held-out evaluation) and
    ``ckpt/best.safetensors`` read back by ``loaders.load_checkpoint`` give the same logits."""
    seen: list[tuple[object, torch.Tensor]] = []

    def spy(model, data, *args, **kwargs):
        batch = data.batch([0, 1, 2])
        was_training = model.training
        model.eval()
        with torch.no_grad():
            seen.append((batch, model(batch).logits.float()))
        model.train(was_training)
        return evaluate(model, data, *args, **kwargs)

    monkeypatch.setattr("harness.cell.evaluate.evaluate", spy)
    cfg = parse_cell_config(
        tiny_cell(cache, train__method="lora", train__lr=1e-2, checkpoint__peft_dir=True)
    )
    assert run_cell(cfg, tmp_path / "cell") == 0
    summary = read_summary(tmp_path / "cell" / "summary.json")
    assert summary["outcome"] == "completed", summary
    assert summary["metrics"]["scored_weights"] == "best"
    assert (tmp_path / "cell" / "ckpt" / "peft" / "adapter_config.json").exists()
    loaded = load_checkpoint(tmp_path / "cell" / "ckpt" / "best.safetensors")
    assert loaded.format == "lora-file" and loaded.report.probe.changed
    assert loaded.report.hyperparameters["step"] == str(summary["metrics"]["best_step"])
    batch, scored = seen[-1]  # the last evaluation is the held-out one, on the restored best
    with torch.no_grad():
        reloaded = loaded.model.eval()(batch).logits.float()
    torch.testing.assert_close(reloaded, scored, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_oom_under_a_real_budget_is_an_outcome(cache, tmp_path):
    """The seed's case in small: eager attention over a 730-token prefix does not fit the budget."""
    cfg = tiny_cell(
        cache,
        runtime__memory_budget_gb=0.6,
        model__image_tokens=729,
        attention__mode="prefix_bidirectional",
        attention__impl="eager_dense",
        train__micro_batch=64,
    )
    out = tmp_path / "cell"
    proc = run_cell_cli(write_yaml(tmp_path / "c.yaml", cfg), out, timeout=300)
    summary = read_summary(out / "summary.json")
    assert proc.returncode == 0, proc.stderr
    assert summary["outcome"] == "oom", summary
    assert summary["oom"]["phase"] == "train" and summary["train"]["stop_reason"] == "oom"
    assert summary["oom"]["budget_bytes"] == int(0.6 * 1024**3)
    assert "allocate" in summary["oom"]["message"]


def test_divergence_is_an_outcome(cache, tmp_path):
    cfg = parse_cell_config(
        tiny_cell(
            cache, train__lr=1e30, train__warmup_steps=0, train__grad_clip=0.0, train__max_steps=10
        )
    )
    run_cell(cfg, tmp_path / "cell")
    summary = read_summary(tmp_path / "cell" / "summary.json")
    assert summary["outcome"] == "diverged"
    assert "loss became" in summary["error"]["message"]
    assert summary["train"]["stop_reason"] == "diverged" and summary["train"]["steps_planned"] == 10


@pytest.mark.slow
def test_sigterm_marks_the_cell_interrupted(cache, tmp_path):
    cfg = tiny_cell(cache, train__max_steps=100000, train__eval_every=100000)
    out = tmp_path / "cell"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cell",
            str(write_yaml(tmp_path / "c.yaml", cfg)),
            "--out",
            str(out),
        ],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not read_metrics(out / "metrics.jsonl") and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in err
    summary = read_summary(out / "summary.json")
    assert summary["outcome"] == "interrupted"
    assert summary["train"]["stop_reason"] == "interrupted"
    assert summary["train"]["steps"] < summary["train"]["steps_planned"] == 100000


@pytest.mark.slow
def test_bad_jsonl_is_one_clear_failure(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"question": "q", "answer": "a"}\n{"question": "q"\n')
    cfg = {
        "data": {"kind": "jsonl", "train_path": str(bad), "val_path": str(bad)},
        "runtime": {"threads": 1},
    }
    proc = run_cell_cli(write_yaml(tmp_path / "c.yaml", cfg), tmp_path / "cell", timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "train.jsonl:2" in proc.stderr
    summary = read_summary(tmp_path / "cell" / "summary.json")
    assert summary["outcome"] == "failed" and "train.jsonl:2" in summary["error"]["message"]
    assert summary["train"]["stop_reason"] == "error" and summary["train"]["steps"] is None


def test_bad_image_is_one_clear_failure(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    rows = tmp_path / "d.jsonl"
    rows.write_text(json.dumps({"image": "broken.png", "question": "q", "answer": "1"}) + "\n")
    cfg = {"data": {"kind": "jsonl", "train_path": str(rows), "val_path": str(rows)}}
    assert run_cell(parse_cell_config(cfg), tmp_path / "cell") == 1
    err = read_summary(tmp_path / "cell" / "summary.json")["error"]
    assert err["type"] == "DataError" and "broken.png" in err["message"]


def test_invalid_config_exits_2_without_writing(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {"train": {"grad_acum": 4}})
    proc = run_cell_cli(path, tmp_path / "cell", timeout=60)
    assert proc.returncode == 2
    assert "did you mean `train.grad_accum`" in proc.stderr
    assert not (tmp_path / "cell").exists()


def test_hf_causal_lm_from_a_local_directory(tmp_path):
    """A transformers causal LM saved locally (tiny config, built here) trains on text-only JSONL."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.models.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    rows = [(f"add {i} and {i}", str(2 * i)) for i in range(20)]
    data = write_text_jsonl(tmp_path / "t.jsonl", rows)
    cfg = {
        "data": {"kind": "jsonl", "train_path": str(data), "val_path": str(data)},
        "model": {"name": "hf-causal-lm", "path": str(tmp_path / "lm")},
        "train": {"max_steps": 4, "micro_batch": 4, "eval_every": 2, "warmup_steps": 1},
        "eval": {"max_new_tokens": 4},
    }
    assert run_cell(parse_cell_config(cfg), tmp_path / "cell") == 0
    summary = read_summary(tmp_path / "cell" / "summary.json")
    assert summary["outcome"] == "completed" and summary["metrics"]["n"] == 20
    # no data.test_path: the reported split is the validation split that chose the best step
    assert summary["metrics"]["test_is_val"] is True


def test_missing_hf_model_is_a_clear_failure(tmp_path):
    data = write_text_jsonl(tmp_path / "t.jsonl", [("q", "a")])
    cfg = {
        "data": {"kind": "jsonl", "train_path": str(data), "val_path": str(data)},
        "model": {"name": "hf-causal-lm", "path": str(tmp_path / "nope")},
    }
    assert run_cell(parse_cell_config(cfg), tmp_path / "cell") == 1
    err = read_summary(tmp_path / "cell" / "summary.json")["error"]
    assert err["type"] == "ModelLoadError" and "nope" in err["message"]


def test_gradient_checkpointing_gives_the_same_step(cache):
    """Recomputing activations in backward must not change the gradients."""
    cfg, model, data = _model_and_data(cache, train__grad_clip=0.0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    plain = _grads_after_step(model, [data.batch([0, 1])], cfg)
    model.load_state_dict(state)
    model.base_decoder().gradient_checkpointing_enable(
        gradient_checkpointing_kwargs={"use_reentrant": False}
    )
    model.train()
    assert model.base_decoder().model.gradient_checkpointing
    ckpt = _grads_after_step(model, [data.batch([0, 1])], cfg)
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], rtol=1e-4, atol=1e-6)


def test_a_cell_is_reproducible(cache, tmp_path):
    """Same config, same seed, two runs: identical weights and scores."""
    cfg = parse_cell_config(tiny_cell(cache, train__max_seconds=1000.0))
    for name in ("a", "b"):
        assert run_cell(cfg, tmp_path / name) == 0
    a, b = (load_file(str(tmp_path / n / "ckpt" / "final.safetensors")) for n in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = (read_summary(tmp_path / n / "summary.json") for n in ("a", "b"))
    assert sa["metrics"] == sb["metrics"]


@pytest.mark.slow
def test_the_cell_stops_itself_at_its_time_limit(cache, tmp_path):
    """runtime.timeout_s counts from the process start; the cell records `timeout` itself, with
    what it trained, and exits 0 (a result); the runner only kills a cell that cannot."""
    cfg = tiny_cell(
        cache, train__max_steps=100000, train__eval_every=100000, runtime__timeout_s=20.0
    )
    out = tmp_path / "cell"
    started = time.monotonic()
    proc = run_cell_cli(write_yaml(tmp_path / "c.yaml", cfg), out, timeout=240)
    took = time.monotonic() - started
    summary = read_summary(out / "summary.json")
    assert proc.returncode == 0, proc.stderr
    assert summary["outcome"] == "timeout" and summary["written_by"] == "cell"
    assert summary["error"]["type"] == "timeout" and "20.0s" in summary["error"]["message"]
    assert summary["train"]["steps"] > 0 and summary["error"]["phase"] == "train"
    assert summary["train"]["stop_reason"] == "timeout"
    assert took < 120  # stopped by its own timer (setup alone can take 15 s when loaded)


def test_a_time_cap_is_recorded_with_the_steps_done(cache, tmp_path):
    """``train.max_seconds`` is a safety cap: a cell it stops stays `completed`, flagged
    `time_cap` with the steps done of those planned, and the final weights are what is scored
    (checkpoint.save: none). A cap of 1 microsecond binds after the first step on any machine."""
    cfg = tiny_cell(cache, train__max_seconds=1e-6, checkpoint__save="none")
    assert run_cell(parse_cell_config(cfg), tmp_path / "cell") == 0
    summary = read_summary(tmp_path / "cell" / "summary.json")
    train, m = summary["train"], summary["metrics"]
    assert summary["outcome"] == "completed" and train["stop_reason"] == "time_cap"
    assert train["steps"] < train["steps_planned"] == 6
    assert budget_shortfall(summary) == f"time cap at {train['steps']}/6 steps"
    assert m["scored_weights"] == "final" and m["best_step"] == train["steps"]
    val = [r for r in read_metrics(tmp_path / "cell" / "metrics.jsonl") if r.get("split") == "val"]
    assert val[-1]["step"] == train["steps"] and m["best_val"] == val[-1]["exact_match"]


@pytest.mark.parametrize(
    ("val", "test", "test_is_val"),
    [("v", None, True), (None, "t", True), ("v", "t", False), ("v", "v", True)],
)
def test_test_is_val_says_whether_the_reported_split_is_held_out(tmp_path, val, test, test_is_val):
    files = {name: write_text_jsonl(tmp_path / f"{name}.jsonl", [(name, "1")]) for name in "tvx"}
    cfg = parse_cell_config(
        {
            "data": {
                "kind": "jsonl",
                "train_path": str(files["x"]),
                "val_path": val and str(files[val]),
                "test_path": test and str(files[test]),
            }
        }
    )
    splits = load_splits(cfg.data)
    assert splits.test_is_val is test_is_val
    assert [r.question for r in splits.test] == [test or val]
