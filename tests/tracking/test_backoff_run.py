"""A real OOM under the enforced CPU budget, rescued by ``runtime.oom_backoff``, end to end:
the real runner and cells, the report, the W&B offline mirror, a resume and ``--rerun oom``."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from harness.contracts.store_files import read_metrics, read_summary
from tests.cell_helpers import tiny_cell

from .conftest import read_offline_runs, run_cli

BUDGET_GB = 0.6
"""Calibrated on a 2-core CPU with this file's cell: micro-batch 4 runs out of memory
(train peak RSS ~656 MiB without a budget), micro-batch 2 fits (~535 MiB)."""


def _matrix(tmp_path, backoff: list[str]) -> dict:
    base = tiny_cell(
        tmp_path / "data",
        model__image_tokens=729,
        model__hidden_size=64,
        model__num_heads=8,
        attention__mode="prefix_bidirectional",
        attention__impl="eager_dense",
        train__max_steps=2,
        train__eval_every=2,
        eval__batch_size=1,
        runtime__memory_budget_gb=BUDGET_GB,
        runtime__oom_backoff=backoff,
    )
    return {
        "name": "backoff",
        "base": base,
        "matrix": {
            "batch": [  # the same 4 samples per step, asked for in two shapes
                {"train.micro_batch": 4, "train.grad_accum": 1},
                {"train.micro_batch": 2, "train.grad_accum": 2},
            ]
        },
    }


def _run(tmp_path, matrix: dict, *flags: str, wandb: str = "disabled"):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(matrix, sort_keys=False))
    store = tmp_path / "runs"
    args = (str(path), "--store", str(store), "--wandb", wandb, "--report", *flags)
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr + done.stdout
    return store / "backoff", done


def _cells(store):
    cells = {}
    for path in store.iterdir():
        if (path / "summary.json").is_file():
            config = yaml.safe_load((path / "config.yaml").read_text())
            cells[config["train"]["micro_batch"]] = path
    return cells


@pytest.mark.slow
def test_a_cell_out_of_memory_at_micro_batch_4_completes_at_2(tmp_path, home):
    # without back-off: the OOM is the outcome, as before
    store, _ = _run(tmp_path, _matrix(tmp_path, []))
    cells = _cells(store)
    assert read_summary(cells[4] / "summary.json")["outcome"] == "oom"
    assert read_summary(cells[2] / "summary.json")["outcome"] == "completed"
    # back-off on: the same cell ids, `--rerun oom` retries the OOM cell with it
    store, done = _run(
        tmp_path, _matrix(tmp_path, ["micro_batch"]), "--rerun", "oom", wandb="offline"
    )
    assert _cells(store) == cells
    rescued, direct = (read_summary(cells[mb] / "summary.json") for mb in (4, 2))
    assert rescued["outcome"] == "completed", rescued
    assert [a["outcome"] for a in rescued["attempts"]] == ["oom", "completed"]
    first, last = rescued["attempts"]
    assert first["oom_phase"] == "train" and first["step_taken"] == "micro_batch 4 -> 2"
    assert first["in_use_bytes"] > 0 and first["budget_bytes"] == int(BUDGET_GB * 1024**3)
    assert rescued["effective"]["train.micro_batch"] == 2
    assert rescued["effective"]["train.grad_accum"] == 2
    assert rescued["memory"]["train"]["peak_bytes"] == last["peak_bytes"]
    assert rescued["timings"]["wall_s"] >= first["wall_s"] + last["wall_s"]  # the whole cell
    # the same samples seen, the loss curve of the cell run directly at 2 x 2
    assert rescued["train"]["samples_seen"] == direct["train"]["samples_seen"] == 8
    assert rescued["train"]["samples_planned"] == 8
    curve = [r["loss"] for r in read_metrics(cells[4] / "metrics.jsonl") if r["kind"] == "train"]
    ref = [r["loss"] for r in read_metrics(cells[2] / "metrics.jsonl") if r["kind"] == "train"]
    assert len(curve) == len(ref) == 2
    assert all(
        math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6) for a, b in zip(curve, ref, strict=True)
    )
    aside = cells[4] / "attempts" / "1"
    assert read_summary(aside / "summary.json")["outcome"] == "oom"
    # every view shows the substitution
    shown = "completed (micro_batch 4 -> 2 after OOM)"
    assert "micro_batch 4 -> 2 after OOM" in done.stdout + done.stderr  # the runner's lines
    assert shown in (store / "EXPERIMENTS.md").read_text()
    runs = read_offline_runs(tmp_path / "runs" / "wandb", tmp_path)
    run = runs[cells[4].name]
    assert run.summary["outcome"] == "completed"
    assert run.summary["backoff"] == "micro_batch 4 -> 2 after OOM"
    assert run.summary["effective/train.micro_batch"] == 2
    # a rescued cell is done like any other: a resume leaves it as it is
    before = (cells[4] / "summary.json").read_bytes()
    store, done = _run(tmp_path, _matrix(tmp_path, ["micro_batch"]))
    assert (cells[4] / "summary.json").read_bytes() == before
    assert json.loads((cells[4] / "cell.json").read_text())["finished_at"]
    assert not (cells[4] / "summary.json.2").exists()
