"""A real offline W&B mirror of the smoke matrix, read back from the offline run files."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from harness.contracts.store_files import read_summary
from loaders import load_checkpoint
from reports.stats import wilson_interval

from .conftest import read_offline_runs, run_cli, smoke_matrix, warnings


@pytest.mark.slow
def test_smoke_matrix_is_mirrored_to_one_offline_run_per_cell(tmp_path, home):
    matrix = smoke_matrix(tmp_path, log_model=True, tags=["ci"])
    store = tmp_path / "runs"
    done = run_cli(str(matrix), "--store", str(store), "--wandb", "offline", "--quiet")
    assert done.returncode == 0, done.stderr + done.stdout
    assert warnings(done.stderr) == []
    cells = sorted(p for p in (store / "smoke").iterdir() if (p / "summary.json").is_file())
    runs = read_offline_runs(store / "wandb", tmp_path)
    assert sorted(runs) == [p.name for p in cells]  # one offline run per cell, under the store
    for cell_dir in cells:
        run = runs[cell_dir.name]
        summary = read_summary(cell_dir / "summary.json")
        config = yaml.safe_load((cell_dir / "config.yaml").read_text())
        info = json.loads((cell_dir / "cell.json").read_text())
        records = [json.loads(line) for line in (cell_dir / "metrics.jsonl").open()]
        assert (run.project, run.group) == ("vlm-harness", "smoke")
        assert run.name == f"mode={info['axes']['attention.mode']}"
        assert {k: run.config[k] for k in config} == config
        assert run.config["cell/axes"] == info["axes"] and run.config["cell/matrix"] == "smoke"
        # every metrics.jsonl record is one history row, with its step and values
        assert len(run.history) == len(records)
        for row, record in zip(run.history, records, strict=True):
            prefix = "train" if record["kind"] == "train" else record["split"]
            assert row["step"] == record["step"]
            assert row[f"{prefix}/exact_match" if prefix != "train" else "train/loss"] == (
                record["exact_match"] if prefix != "train" else record["loss"]
            )
        # the summary mirrors summary.json; the run finished cleanly
        assert run.exit_code == 0
        assert run.summary["outcome"] == summary["outcome"] == "completed"
        metrics = summary["metrics"]
        assert run.summary["metrics/exact_match"] == metrics["exact_match"]
        low, high = wilson_interval(metrics["exact_match_k"], metrics["n"])
        assert run.summary["metrics/exact_match_ci95_low"] == low
        assert run.summary["metrics/exact_match_ci95_high"] == high
        assert run.summary["memory/train/peak_bytes"] == summary["memory"]["train"]["peak_bytes"]
        assert run.summary["timings/wall_s"] == summary["timings"]["wall_s"]
        assert set(run.tags) == {"ci", "completed"}
        # the scored checkpoint as a model artifact that points at the store's file (no copy)
        (artifact,) = run.artifacts
        ckpt = cell_dir / "ckpt" / "final.safetensors"  # smoke.yaml saves (and scores) final
        (entry,) = artifact["manifest"]["contents"]
        assert entry["path"] == f"best_model/{ckpt.name}"
        assert entry["local_path"] == str(ckpt.resolve())
        meta = json.loads(artifact["metadata"])
        assert meta["format"] == "state-dict" and meta["base_model"] == "harness:tiny-vlm"
        assert meta["config_hash"] == cell_dir.name and meta["method"] == "full"
        assert meta["weights"] == "final" and meta["file"] == entry["path"]
        assert meta["attention"]["mode"] == info["axes"]["attention.mode"]
        assert run.summary["model_artifact"] == artifact["name"] == f"smoke-{cell_dir.name}"
    # the artifact's layout, as `wandb artifact get` would download it, loads without guessing
    downloaded = tmp_path / "downloaded" / entry["path"]
    downloaded.parent.mkdir(parents=True)
    shutil.copyfile(entry["local_path"], downloaded)
    loaded = load_checkpoint(tmp_path / "downloaded")
    assert loaded.format == meta["format"] and loaded.report.base_model == meta["base_model"]
    assert max(p.stat().st_size for p in (store / "wandb").rglob("*") if p.is_file()) < (
        ckpt.stat().st_size
    )
    assert not [p for p in home.rglob("*") if "wandb" in p.name or p.name == ".netrc"]
