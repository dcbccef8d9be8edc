"""The real `benchmark` CLI in subprocesses: seed 002's story end to end (a DyLoRA-MoE artifact
downloaded from a W&B server on 127.0.0.1, compared with its base), and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.benchmark.cli import main
from tests.benchmark.builders import dylora_trained, run_cli, write_dylora_single
from tests.benchmark.wandb_server import FakeWandbServer


def _wandb_env(tmp_path: Path, url: str) -> dict[str, str]:
    env = {"HOME": str(tmp_path / "home"), "WANDB_API_KEY": "k" * 40, "WANDB_BASE_URL": url}
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        env[var] = str(tmp_path / "wandb" / var.lower())
    env["WANDB_ARTIFACT_DIR"] = str(tmp_path / "env-artifacts")
    return env


@pytest.mark.slow
def test_seed002_wandb_artifact_end_to_end(tmp_path, base_dir, data_dir, monkeypatch):
    model_dir = tmp_path / "made" / "best_model"
    write_dylora_single(model_dir, dylora_trained(base_dir), base_dir)
    files = {f"best_model/{p.name}": p.read_bytes() for p in sorted(model_dir.iterdir())}
    meta = {"format": "dylora-moe", "base_model": str(base_dir)}
    out = tmp_path / "report.md"
    ref = "johnrcumming/dylo-moe-full-training/best-dylora-model-full:v12"
    with FakeWandbServer(
        files,
        entity="johnrcumming",
        project="dylo-moe-full-training",
        name="best-dylora-model-full",
        version=12,
        metadata=meta,
    ) as srv:
        done = run_cli(
            "--wandb_artifact",
            ref,
            "--data",
            str(data_dir / "qa.jsonl"),
            "--max_samples",
            "2",
            "--max_new_tokens",
            "3",
            "--output",
            str(out),
            "--artifacts_dir",
            str(tmp_path / "arts"),
            "--wandb_timeout",
            "10",
            env=_wandb_env(tmp_path, srv.url),
        )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert {p.name for p in out.parent.iterdir()} >= {"report.md", "report.json"}
    res = json.loads(out.with_suffix(".json").read_text())
    assert (
        res["trained"]["reference"] == ref
        and res["trained"]["origin"] == "W&B artifact (downloaded)"
    )
    assert res["trained"]["source"] == str(tmp_path / "arts" / "best-dylora-model-full:v12")
    assert res["loader"]["format"] == "dylora-moe" and res["proof"]["unchanged"] is False
    assert res["base"]["spec"] == str(base_dir) and res["comparison"]["n"] == 2
    report = out.read_text()
    assert f"W&B reference: `{ref}`" in report and "Detected format: **dylora-moe**" in report
    assert "exact match" in done.stdout and "trained" in done.stdout  # the rich table
    # offline now (in-process, no server): the verified copy is used
    for var, value in _wandb_env(tmp_path, "http://127.0.0.1:9").items():
        monkeypatch.setenv(var, value)
    again = tmp_path / "again.md"
    args = ["--wandb_artifact", ref, "--data", str(data_dir / "qa.jsonl"), "--max_samples", "1"]
    assert main([*args, "--output", str(again), "--artifacts_dir", str(tmp_path / "arts")]) == 0
    res = json.loads(again.with_suffix(".json").read_text())
    assert res["trained"]["origin"] == "W&B artifact (local copy)"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--data", "x.jsonl"],
            "one of the arguments --trained_model/--trained-model --wandb_artifact",
        ),
        (["--trained_model", "missing-dir"], "--trained_model missing-dir: no such file"),
        (["--wandb_artifact", "a/b/c/d:v1"], "4 '/'-separated parts"),
        (["--wandb_artifact", "e/p/model:"], "empty alias"),
        (["--trained_model", ".", "--samples_per_task", "4"], "identical completions"),
        (["--trained_model", ".", "--max_samples", "0"], "--max_samples must be >= 1"),
        (["--trained_model", ".", "--output", "r.json"], "the report is markdown"),
        (["--trained_model", ".", "--device", "cuda:0"], None),
        (["--trained_model", ".", "--bogus"], "unrecognized arguments: --bogus"),
        (["--trained_model", ".", "--task", "nope"], "argument --task: invalid choice: 'nope'"),
        (["--trained_model", ".", "--max_samples", "x"], "invalid int value: 'x'"),
        (["--trained_model", ".", "--batch_size", "0"], "--batch_size '0': expected a positive"),
        (["--trained_model", ".", "--batch_size", "big"], "expected a positive integer or auto"),
        (["--trained_model", ".", "--stride", "0"], "--stride 0: must be between 1 and"),
        (["--trained_model", ".", "--max_length", "8", "--stride", "9"], "and --max_length (8)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, says):
    import torch

    if "cuda:0" in args:
        if torch.cuda.is_available():
            pytest.skip("CUDA present")
        says = "CUDA is not available"
        args = [*args, "--data", str(tmp_path / "q.jsonl")]
        (tmp_path / "q.jsonl").write_text('{"question": "a", "answer": "b"}\n')
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # the whole stderr: one line
    assert says in done.stderr, done.stderr
    assert not (tmp_path / "benchmark_report.md").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--samples", "s.jsonl", "--bogus"], "unrecognized arguments: --bogus"),
        (["--samples"], "argument --samples: expected one argument"),
        (["--samples", "s.jsonl", "--task", "mbpp"], "argument --task: invalid choice: 'mbpp'"),
        (["--samples", "s.jsonl", "--timeout_s", "soon"], "invalid float value: 'soon'"),
        ([], "the following arguments are required: --samples"),
    ],
)
def test_score_bad_flag_is_one_line_and_exit_2(tmp_path, args, says):
    done = run_cli("score", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # no usage block
    assert done.stderr.startswith("benchmark score: error: ") and says in done.stderr
    assert "(see benchmark score --help)" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_data_errors_name_the_file(tmp_path, base_dir, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a", "answer": "b"}\nnot json\n')
    out = str(tmp_path / "r.md")
    assert main(["--trained_model", str(base_dir), "--data", str(bad), "--output", out]) == 2
    assert f"{bad}:2: invalid JSON" in capsys.readouterr().err
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"foo": 1}\n')
    assert main(["--trained_model", str(base_dir), "--data", str(odd), "--output", out]) == 2
    assert "cannot tell the task" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()


def test_no_base_known_runs_the_trained_model_alone(tmp_path, base_dir, data_dir):
    args = ["--trained_model", str(base_dir), "--data", str(data_dir / "text.txt")]
    assert main([*args, "--output", str(tmp_path / "r.md"), "--quiet"]) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["comparison"] is None and res["metrics"]["base"] is None
    assert res["loader"]["format"] == "hf-full" and res["proof"]["unchanged"] is None
    assert "pass --base_model to compare" in (tmp_path / "r.md").read_text()


def test_score_subcommand_is_wired(tmp_path, data_dir):
    from tests.benchmark.builders import code_pairs

    samples = tmp_path / "samples.jsonl"
    rows = [{"task_id": f"t/{i}", "completion": c} for i, (_, c) in enumerate(code_pairs())]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "score.md"
    args = ["score", "--task", "humaneval", "--samples", str(samples), "--data"]
    assert main([*args, str(data_dir / "code.jsonl"), "--output", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["pass_at_k"]["pass@1"] == 1.0
