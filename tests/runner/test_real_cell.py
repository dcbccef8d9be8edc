"""The runner with the real cell (``python -m harness.cell``): smoke.yaml end to end, a real OOM."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from harness.contracts.config import load_cell_config
from harness.contracts.identity import config_hash
from harness.runner import make_plan, run_plan
from harness.runner.executor import LocalProcessExecutor
from harness.runner.matrix import build_matrix
from harness.runner.store import Store

from .conftest import REPO

CELL_FILES = {
    "cell.json",
    "cell.log",
    "config.yaml",
    "metrics.jsonl",
    "predictions.jsonl",
    "summary.json",
    "ckpt",
}


def test_run_matrix_on_smoke_yaml_writes_the_run_store(tmp_path):
    store = tmp_path / "runs"
    done = subprocess.run(
        [
            sys.executable,
            "run_matrix.py",
            "experiments/smoke.yaml",
            "--store",
            str(store),
            "--set",
            f"data.cache_dir={tmp_path / 'data'}",
            "--quiet",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "matrix summary" in done.stdout and "completed" in done.stdout
    entries = {p.name for p in (store / "smoke").iterdir()}
    cells = sorted(p for p in (store / "smoke").iterdir() if p.is_dir() and p.name != ".locks")
    assert len(cells) == 2 and entries == {".locks", "matrix.json"} | {p.name for p in cells}
    meta = json.loads((store / "smoke" / "matrix.json").read_text())
    assert meta["name"] == "smoke" and meta["axes"] == {
        "attention.mode": ["causal", "prefix_bidirectional"]
    }
    modes = set()
    for cell_dir in cells:
        assert {p.name for p in cell_dir.iterdir()} == CELL_FILES
        assert (cell_dir / "ckpt" / "final.safetensors").is_file()
        summary = json.loads((cell_dir / "summary.json").read_text())
        assert summary["outcome"] == "completed" and summary["cell_id"] == cell_dir.name
        assert config_hash(load_cell_config(str(cell_dir / "config.yaml"))) == cell_dir.name
        info = json.loads((cell_dir / "cell.json").read_text())
        assert info["matrix"] == "smoke" and info["repeat"] == 0
        assert 0 <= summary["metrics"]["exact_match"] <= 1
        assert {"git_commit", "torch", "hostname"} <= set(summary["provenance"])
        kinds = {json.loads(line)["kind"] for line in (cell_dir / "metrics.jsonl").open()}
        assert kinds == {"train", "eval"}
        modes.add(info["axes"]["attention.mode"])
    assert modes == {"causal", "prefix_bidirectional"}
    again = subprocess.run(
        [
            sys.executable,
            "run_matrix.py",
            "experiments/smoke.yaml",
            "--store",
            str(store),
            "--set",
            f"data.cache_dir={tmp_path / 'data'}",
            "--dry-run",
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(again.stdout)["done"] == 2


@pytest.mark.slow
def test_a_real_oom_is_recorded_and_the_next_cell_completes(tmp_path):
    base = yaml.safe_load((REPO / "experiments" / "smoke.yaml").read_text())["base"]
    base["data"]["cache_dir"] = str(tmp_path / "data")
    raw = {
        "name": "oom",
        "base": base,
        "matrix": {
            "budget": [
                # micro_batch 128 needs well over 0.45 GB on top of the ~0.35 GB of torch itself
                {"runtime.memory_budget_gb": 0.45, "train.micro_batch": 128},
                {"runtime.memory_budget_gb": None, "train.micro_batch": 8},
            ]
        },
    }
    matrix = build_matrix(raw, "oom.yaml", [])
    store = Store(tmp_path / "runs", matrix.name)
    plan = make_plan(matrix, matrix.cells, store, set())
    result = run_plan(plan, LocalProcessExecutor())
    (_, oom, _), (_, ok, _) = result.rows
    assert oom["outcome"] == "oom", oom.get("error")
    assert oom["oom"]["budget_bytes"] == int(0.45 * 2**30)
    assert "allocate" in oom["oom"]["message"]
    assert ok["outcome"] == "completed"


@pytest.mark.slow
def test_a_real_cell_that_fails_is_recorded_with_its_log_tail(tmp_path):
    """Missing data: the cell writes its own `failed` summary; the runner adds the log tail."""
    raw = {
        "name": "broken",
        "base": {
            "data": {
                "kind": "jsonl",
                "train_path": str(tmp_path / "nope.jsonl"),
                "val_path": str(tmp_path / "nope.jsonl"),
            },
            "runtime": {"threads": 1},
        },
        "matrix": {"seed": [0]},
    }
    matrix = build_matrix(raw, "broken.yaml", [])
    store = Store(tmp_path / "runs", matrix.name)
    store.ensure_writable()
    result = run_plan(make_plan(matrix, matrix.cells, store, set()), LocalProcessExecutor())
    assert result.outcomes() == ["failed"]
    summary = json.loads((store.cell_dir(matrix.cells[0].cell_id) / "summary.json").read_text())
    assert summary["error"]["type"] == "DataError"
    assert "nope.jsonl" in summary["error"]["message"]
    assert "nope.jsonl" in summary["error"]["log_tail"]
    assert "Traceback" not in summary["error"]["log_tail"]
