"""``runtime.oom_backoff``: its steps, the cell id, bad values, and what every view shows."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from rich.console import Console

from harness.contracts.attempts import (
    backoff_exhausted,
    can_back_off,
    effective_settings,
    next_config,
    substitution,
)
from harness.contracts.config import ConfigError, parse_cell_config, to_dict
from harness.contracts.identity import config_hash
from harness.contracts.store_files import read_summary
from harness.runner.cell_text import cell_line
from harness.runner.live import LiveProgress
from harness.runner.matrix import Cell
from harness.wandb_access.fields import summary_fields
from reports.effective import comparison_note
from reports.fmt import outcome
from reports.results import CellResult
from tests.cell_helpers import REPO, run_cell_cli, tiny_cell, write_yaml


def _config(**train) -> dict:
    cfg = to_dict(parse_cell_config({"train": train, "eval": {"batch_size": 4}}))
    return cfg


def _ladder(config: dict, steps: list[str], phase: str) -> list[str]:
    taken = []
    while (found := next_config(config, steps, phase)) is not None:
        config, step = found
        taken.append(step)
    return taken


def test_micro_batch_halves_and_grad_accum_doubles_down_to_one():
    config = _config(micro_batch=8, grad_accum=1)
    steps = ["micro_batch", "gradient_checkpointing", "eval_batch"]
    assert _ladder(config, steps, "train") == [
        "micro_batch 8 -> 4",
        "micro_batch 4 -> 2",
        "micro_batch 2 -> 1",
        "gradient_checkpointing on",
    ]
    last = config
    while (found := next_config(last, steps, "train")) is not None:
        last = found[0]
        train = last["train"]
        assert train["micro_batch"] * train["grad_accum"] == 8  # the samples per step stay
    assert last["train"]["gradient_checkpointing"] is True and last["eval"]["batch_size"] == 4


def test_an_odd_micro_batch_goes_to_one_keeping_the_samples_per_step():
    config, step = next_config(_config(micro_batch=6, grad_accum=2), ["micro_batch"], "train")
    assert step == "micro_batch 6 -> 3"
    config, step = next_config(config, ["micro_batch"], "train")
    assert step == "micro_batch 3 -> 1" and config["train"]["grad_accum"] == 12


def test_each_phase_gets_only_its_own_steps_in_the_order_listed():
    config = _config(micro_batch=2)
    assert _ladder(config, ["gradient_checkpointing", "micro_batch"], "train") == [
        "gradient_checkpointing on",
        "micro_batch 2 -> 1",
    ]
    assert _ladder(config, ["micro_batch", "eval_batch"], "eval") == [
        "eval_batch 4 -> 2",
        "eval_batch 2 -> 1",
    ]
    assert _ladder(config, ["eval_batch"], "train") == []
    assert _ladder(config, ["micro_batch", "gradient_checkpointing"], "setup") == []
    assert not can_back_off({**config, "runtime": {"oom_backoff": []}}, "train")
    assert can_back_off({**config, "runtime": {"oom_backoff": ["micro_batch"]}}, "train")


def test_back_off_keys_stay_out_of_the_cell_id():
    plain = parse_cell_config({})
    on = parse_cell_config({"runtime": {"oom_backoff": ["micro_batch", "eval_batch"]}})
    assert config_hash(plain) == config_hash(on)
    old = to_dict(plain)  # a store written before the keys existed
    del old["runtime"]["oom_backoff"]
    assert config_hash(old) == config_hash(plain)
    assert config_hash(parse_cell_config({"train": {"micro_batch": 4}})) != config_hash(plain)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (["micro_batch", "micro_batch"], "lists a step twice"),
        (["smaller"], "runtime.oom_backoff"),
        ("micro_batch", "runtime.oom_backoff"),
    ],
)
def test_bad_values_are_one_config_error(value, says):
    with pytest.raises(ConfigError) as caught:
        parse_cell_config({"runtime": {"oom_backoff": value}})
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_value_is_one_line_and_exit_2_before_anything_runs(tmp_path):
    config = write_yaml(tmp_path / "c.yaml", tiny_cell(tmp_path, runtime__oom_backoff=["fewer"]))
    out = tmp_path / "cell"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cell", str(config), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and not out.exists()
    (line,) = done.stderr.strip().splitlines()
    assert "runtime.oom_backoff" in line and "Traceback" not in done.stderr


def test_a_bad_value_from_the_runner_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "run_matrix.py",
            "experiments/smoke.yaml",
            "--store",
            str(tmp_path / "runs"),
            "--set",
            "runtime.oom_backoff=[micro_batch,micro_batch]",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and not (tmp_path / "runs").exists()
    (line,) = done.stderr.strip().splitlines()
    assert "lists a step twice" in line


def _attempt(n, outcome, mb, ga, step=None, ckpt=False, phase="train"):
    settings = {
        "train.micro_batch": mb,
        "train.grad_accum": ga,
        "train.gradient_checkpointing": ckpt,
        "eval.batch_size": 8,
    }
    return {
        "attempt": n,
        "outcome": outcome,
        "settings": settings,
        "oom_phase": phase if outcome == "oom" else None,
        "step_taken": step,
    }


RESCUED = {
    "outcome": "completed",
    "cell_id": "abc",
    "seed": 0,
    "metrics": {"exact_match": 0.5, "exact_match_k": 4, "n": 8},
    "train": {"steps": 3, "steps_planned": 3, "stop_reason": "budget"},
    "attempts": [
        _attempt(1, "oom", 4, 1, "micro_batch 4 -> 2"),
        _attempt(2, "oom", 2, 2, "micro_batch 2 -> 1"),
        _attempt(3, "completed", 1, 4),
    ],
    "effective": {"train.micro_batch": 1, "train.grad_accum": 4},
}
EXHAUSTED = {
    "outcome": "oom",
    "cell_id": "def",
    "seed": 0,
    "oom": {"phase": "train", "in_use_bytes": 2**29, "budget_bytes": 2**30, "message": "x"},
    "attempts": [
        _attempt(1, "oom", 2, 1, "micro_batch 2 -> 1"),
        _attempt(2, "oom", 1, 2, "gradient_checkpointing on"),
        _attempt(3, "oom", 1, 2, ckpt=True),
    ],
}


def test_the_substitution_is_shown_in_every_view():
    assert substitution(RESCUED) == "micro_batch 4 -> 1 after OOM"
    assert substitution({**RESCUED, "attempts": RESCUED["attempts"][-1:]}) is None
    ckpt = {
        **RESCUED,
        "attempts": [*RESCUED["attempts"][:2], _attempt(3, "completed", 1, 4, ckpt=True)],
    }
    assert substitution(ckpt) == "micro_batch 4 -> 1, gradient_checkpointing on after OOM"
    assert backoff_exhausted(EXHAUSTED) == (
        "after 3 attempts (micro_batch 2 -> 1, gradient_checkpointing on)"
    )
    cell = Cell(cell_id="abc", config=_config(micro_batch=4), axes={}, repeat=0, index=0)
    word, rest = cell_line(cell, RESCUED, "label")
    assert word == "completed" and "micro_batch 4 -> 1 after OOM" in rest
    assert "after 3 attempts" in cell_line(cell, EXHAUSTED, "label")[1]
    assert summary_fields(RESCUED, {})["backoff"] == "micro_batch 4 -> 1 after OOM"
    assert summary_fields(RESCUED, {})["effective/train.micro_batch"] == 1
    result = CellResult(cell_id="abc", axes={}, config=_config(micro_batch=4), summary=RESCUED)
    assert outcome(result) == "completed (micro_batch 4 -> 1 after OOM)"
    assert "after 3 attempts" in outcome(CellResult(cell_id="d", axes={}, summary=EXHAUSTED))
    console = Console(file=io.StringIO(), width=160, force_terminal=False)
    live = LiveProgress(console)
    live.start(1)
    live.cell_start(cell, 3)
    live.cell_end(cell, RESCUED)
    live.close()
    assert "completed" in console.file.getvalue()
    assert "micro_batch 4 -> 1 after OOM" in console.file.getvalue()


def test_a_comparison_across_different_effective_settings_says_so():
    asked = _config(micro_batch=4)
    rescued = CellResult(cell_id="abc", axes={}, config=asked, summary=RESCUED)
    plain = {**RESCUED, "cell_id": "xyz", "attempts": [], "effective": {}}
    other = CellResult(cell_id="xyz", axes={}, config=asked, summary=plain)
    note = comparison_note([rescued], [other])
    assert "different effective settings" in note and "`abc`: micro_batch 4 -> 1" in note
    assert "not bit-identical" in note
    assert comparison_note([other], [other]) == ""
    direct = CellResult(cell_id="d", axes={}, config=_config(micro_batch=1, grad_accum=4))
    direct = CellResult(
        cell_id="d", axes={}, config=direct.config, summary={**plain, "cell_id": "d"}
    )
    assert effective_settings(direct.config)["train.micro_batch"] == 1
    # the configs ask for different micro-batches and both ran 1 x 4: nothing to say
    assert comparison_note([rescued], [direct]) == ""


@pytest.mark.gpu
def test_a_real_cuda_oom_is_rescued_by_a_smaller_micro_batch(tmp_path):
    """The caching allocator's own OOM under the memory fraction; each attempt a fresh process
    (the cell CLI: a fork of a process that has used CUDA could not)."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    cfg = tiny_cell(
        tmp_path,
        model__image_tokens=729,
        attention__mode="prefix_bidirectional",
        attention__impl="eager_dense",
        train__micro_batch=64,
        train__precision="fp32",
        runtime__device="cuda",
        runtime__memory_budget_gb=0.5,
        runtime__oom_backoff=["micro_batch"],
    )
    out = tmp_path / "cell"
    done = run_cell_cli(write_yaml(tmp_path / "c.yaml", cfg), out, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = read_summary(out / "summary.json")
    assert summary["outcome"] == "completed", summary
    first = summary["attempts"][0]
    assert first["outcome"] == "oom" and first["budget_bytes"] == int(0.5 * 1024**3)
    effective = summary["effective"]
    assert effective["train.micro_batch"] < 64
    assert effective["train.micro_batch"] * effective["train.grad_accum"] == 64
    assert summary["memory"]["kind"] == "cuda"
    assert summary["memory"]["train"]["peak_bytes"] <= int(0.5 * 1024**3)


def test_an_oom_inside_evaluation_is_an_eval_oom_even_during_training():
    from harness.cell.evaluate import evaluate
    from harness.cell.memory import oom_phase

    class OutOfMemoryOnEval:
        training = True

        def eval(self):
            raise MemoryError("can't allocate memory")

    with pytest.raises(MemoryError) as caught:
        evaluate(OutOfMemoryOnEval(), [], None, 8, 4)
    assert oom_phase(caught.value, "train") == "eval"
    assert oom_phase(MemoryError("elsewhere"), "train") == "train"
