"""How a cell's records map to W&B (pure functions, no W&B)."""

from __future__ import annotations

import pytest

from harness.wandb_access.fields import (
    MODEL_METADATA_KEYS,
    history_row,
    model_metadata,
    run_name,
    scored_checkpoint,
    summary_fields,
)
from reports.stats import wilson_interval

SUMMARY = {
    "outcome": "completed",
    "cell_id": "abc123",
    "seed": 0,
    "metrics": {
        "exact_match_k": 7,
        "n": 20,
        "exact_match": 0.35,
        "best_step": 40,
        "best_val": 0.4,
        "test_is_val": False,
        "scored_weights": "best",
        "loss": None,
    },
    "train": {"steps": 50, "steps_planned": 50, "stop_reason": "budget", "params": {"total": 9}},
    "memory": {"kind": "cpu_rss", "train": {"peak_bytes": 100}, "eval": None},
    "timings": {"wall_s": 3.5},
    "checkpoints": {"best": "ckpt/best.safetensors", "final": "ckpt/final.safetensors"},
    "error": None,
    "provenance": {"git_commit": "f00", "packages": {"torch": "2.13"}},
}
CONFIG = {
    "train": {"max_steps": 50, "method": "lora", "lora": {"r": 8, "alpha": 16.0}},
    "eval": {"best_metric": "exact_match"},
    "attention": {"mode": "causal", "impl": "sdpa"},
    "model": {"name": "tiny-vlm"},
}


@pytest.mark.parametrize(
    ("axes", "name"),
    [
        ({"attention.mode": "causal", "train.grad_accum": 4}, "mode=causal grad_accum=4"),
        ({"train.lr": 0.003, "seed": 1}, "lr=0.003 seed=1"),
        ({"train.lora.r": 8, "model.r": 2}, "train.lora.r=8 model.r=2"),  # same tail: full keys
        ({"train.lora.target_modules": ["q_proj", "v_proj"]}, "target_modules=q_proj+v_proj"),
        ({}, "abc123"),
    ],
)
def test_run_name_is_the_varying_axes_in_short(axes, name):
    assert run_name(axes, "abc123") == name


def test_a_long_run_name_is_cut_to_what_wandb_takes():
    name = run_name({f"k{i}": "x" * 20 for i in range(10)}, "abc")
    assert len(name) == 128 and name.endswith("~")


def test_history_rows_keep_the_step_and_prefix_fields_by_kind_and_split():
    train = {"kind": "train", "step": 3, "loss": 1.5, "lr": 0.1}
    test = {"kind": "eval", "step": 2, "split": "test", "exact_match": 0.5, "n": 4}
    assert history_row(train) == {"step": 3, "train/loss": 1.5, "train/lr": 0.1}
    assert history_row(test) == {"step": 2, "test/exact_match": 0.5, "test/n": 4}
    assert history_row({"kind": "other", "step": 1}) is None


def test_summary_fields_flatten_the_summary_and_add_the_interval():
    fields = summary_fields(SUMMARY, CONFIG)
    assert fields["outcome"] == "completed" and fields["metrics/exact_match"] == 0.35
    assert fields["memory/train/peak_bytes"] == 100 and fields["train/params/total"] == 9
    assert fields["provenance/git_commit"] == "f00"
    assert not [k for k in fields if k.startswith("provenance/packages")]
    assert "metrics/loss" not in fields and "error" not in fields  # None is left out
    low, high = wilson_interval(7, 20)
    assert (fields["metrics/exact_match_ci95_low"], fields["metrics/exact_match_ci95_high"]) == (
        low,
        high,
    )
    assert fields["metrics/exact_match_ci95_covers"] == (
        "this run's held-out samples (one trained run; seed variance not included)"
    )
    assert "truncated" not in fields


def test_a_truncated_cell_says_so_and_an_oom_shows_phase_and_bytes():
    capped = {**SUMMARY, "train": {"steps": 12, "steps_planned": 50, "stop_reason": "time_cap"}}
    assert summary_fields(capped, CONFIG)["truncated"] == "time cap at 12/50 steps"
    oom = {
        "outcome": "oom",
        "cell_id": "abc123",
        "oom": {"phase": "train", "in_use_bytes": 5, "budget_bytes": 4, "message": "out"},
        "error": {"type": "OOM", "message": "m", "phase": "train", "log_tail": "long " * 500},
    }
    fields = summary_fields(oom, CONFIG)
    assert (fields["oom/phase"], fields["oom/in_use_bytes"], fields["oom/budget_bytes"]) == (
        "train",
        5,
        4,
    )
    assert "error/log_tail" not in fields and fields["error/type"] == "OOM"
    assert "truncated" not in fields and "metrics/exact_match_ci95_low" not in fields


def test_the_scored_checkpoint_is_the_one_the_score_is_for():
    assert scored_checkpoint(SUMMARY) == ("best", "ckpt/best.safetensors")
    final = {**SUMMARY, "metrics": {**SUMMARY["metrics"], "scored_weights": "final"}}
    assert scored_checkpoint(final) == ("final", "ckpt/final.safetensors")
    older = {**SUMMARY, "metrics": {**SUMMARY["metrics"], "scored_weights": None}}
    assert scored_checkpoint(older) == ("best", "ckpt/best.safetensors")
    assert scored_checkpoint({**SUMMARY, "metrics": None}) is None
    assert scored_checkpoint({**SUMMARY, "checkpoints": {"peft": "ckpt/peft"}}) is None


def test_model_metadata_has_every_documented_key():
    described = {
        "format": "lora-file",
        "details": {"base_model": "harness:tiny-vlm", "config_hash": "abc123"},
    }
    meta = model_metadata(described, "best.safetensors", "best", SUMMARY, CONFIG, {"matrix": "m"})
    assert tuple(meta) == MODEL_METADATA_KEYS
    assert meta["format"] == "lora-file" and meta["base_model"] == "harness:tiny-vlm"
    assert meta["file"] == "best_model/best.safetensors" and meta["lora"] == {"r": 8, "alpha": 16.0}
    assert meta["metric"] == {"name": "exact_match", "split": "val", "value": 0.4}
    assert (meta["step"], meta["scored_split"], meta["matrix"]) == (40, "test", "m")
