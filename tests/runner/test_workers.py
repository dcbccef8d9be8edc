"""--workers N: several cells at once on this machine, with the guarantees of one worker
(outcomes, locks, resume, Ctrl-C, kill -9, two runners on one store), threads and GPUs split."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import yaml

from harness.contracts.config import ConfigError
from harness.runner import make_plan, run_plan
from harness.runner.executor import LocalProcessExecutor
from harness.runner.matrix import build_matrix, load_matrix
from harness.runner.progress import QuietProgress
from harness.runner.store import Store
from harness.runner.workers import auto_workers, describe, slot_envs

from .conftest import REPO, write_matrix
from .test_cli import cell_dirs, fake_cli, outcomes, starts, wait_for


class Recorder(QuietProgress):
    """Counts how many cells the runner had started and not yet ended, at most."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.most = 0

    def cell_start(self, cell, max_steps):
        self.running.add(cell.cell_id)
        self.most = max(self.most, len(self.running))

    def cell_end(self, cell, summary):
        self.running.remove(cell.cell_id)


def slot_env(cell_dir) -> dict:
    line = next(ln for ln in (cell_dir / "cell.log").open() if ln.startswith("env "))
    return json.loads(line[4:])


def test_slots_split_the_cores_and_give_each_worker_its_own_gpu():
    gpus = {"CUDA_VISIBLE_DEVICES": "3,5"}
    assert slot_envs(1, gpus, cores=8) == [{}]
    assert slot_envs(2, gpus, cores=8) == [
        {"OMP_NUM_THREADS": "4", "CUDA_VISIBLE_DEVICES": "3"},
        {"OMP_NUM_THREADS": "4", "CUDA_VISIBLE_DEVICES": "5"},
    ]
    three = slot_envs(3, gpus, cores=2)
    assert [s["CUDA_VISIBLE_DEVICES"] for s in three] == ["3", "5", "3"]
    assert {s["OMP_NUM_THREADS"] for s in three} == {"1"}  # never 0 threads
    one_gpu = slot_envs(2, {"CUDA_VISIBLE_DEVICES": "0", "OMP_NUM_THREADS": "6"}, cores=8)
    assert one_gpu == [{}, {}]  # the user's own thread count wins; one GPU is shared


def test_two_workers_give_every_outcome_of_one_worker(tmp_path, fake_command, monkeypatch):
    monkeypatch.setattr("harness.runner.loop.KILL_GRACE_S", 0.5)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    behaviours = ["ok", "raise", "selfkill", "exit0", "hang_ignore_term", "nan"]
    matrix = load_matrix(write_matrix(tmp_path / "m.yaml", behaviours, steps=3, timeout_s=1.5))
    store = Store(tmp_path / "runs", matrix.name)
    recorder = Recorder()
    executor = LocalProcessExecutor(command=fake_command, workers=2)
    result = run_plan(make_plan(matrix, matrix.cells, store, set()), executor, recorder, workers=2)
    by = {c.axes["data.question"]: s["outcome"] for c, s, _ in result.rows}
    assert by == {
        "ok": "completed",
        "raise": "failed",
        "selfkill": "failed",
        "exit0": "failed",
        "hang_ignore_term": "timeout",
        "nan": "diverged",
    }
    assert [c.cell_id for c, _, _ in result.rows] == [c.cell_id for c in matrix.cells]
    assert recorder.most == 2
    envs = [slot_env(store.cell_dir(c.cell_id)) for c in matrix.cells]
    assert {e["CUDA_VISIBLE_DEVICES"] for e in envs} == {"3", "5"}
    threads = str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert {e["OMP_NUM_THREADS"] for e in envs} == {threads}


@pytest.mark.slow
def test_ctrl_c_with_two_workers_marks_both_running_cells_and_resume_finishes(tmp_path):
    matrix = write_matrix(tmp_path / "m.yaml", ["a", "b", "c", "d"], steps=40, step_ms=100)
    store = tmp_path / "runs"
    proc = fake_cli(matrix, store, "--workers", "2")
    wait_for(
        lambda: (
            (store / "fake").exists()
            and sum((d / "metrics.jsonl").exists() for d in cell_dirs(store)) == 2
        )
    )
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Resume with" in err and "--workers 2" in err
    assert outcomes(store) == ["interrupted"] * 2
    assert all(d.name in err for d in cell_dirs(store))  # both named as interrupted
    resumed = fake_cli(matrix, store, "--workers", "2", "--quiet")
    _, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert outcomes(store) == ["completed"] * 4
    assert starts(store) == 4  # cell.log: one start each; the interrupted attempts are .1
    assert sum((d / "cell.log.1").exists() for d in cell_dirs(store)) == 2


@pytest.mark.slow
def test_kill_9_with_two_workers_then_resume_runs_nothing_twice(tmp_path):
    matrix = write_matrix(tmp_path / "m.yaml", list("abcdef"), steps=10, step_ms=100)
    store = tmp_path / "runs"
    proc = fake_cli(matrix, store, "--workers", "2")
    wait_for(
        lambda: (
            (store / "fake").exists()
            and sum((d / "summary.json").exists() for d in cell_dirs(store)) >= 2
            and sum((d / "metrics.jsonl").exists() for d in cell_dirs(store)) >= 3
        )
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    finished = [d for d in cell_dirs(store) if (d / "summary.json").exists()]
    done = {d: (d / "summary.json").stat().st_mtime_ns for d in finished}
    assert 2 <= len(done) < 6  # killed mid-matrix
    time.sleep(1.0)  # orphans die with their runner: nothing more is written
    resumed = fake_cli(matrix, store, "--workers", "2", "--quiet")
    _, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert outcomes(store) == ["completed"] * 6
    assert {d: (d / "summary.json").stat().st_mtime_ns for d in done} == done
    assert starts(store) == 6


def test_two_runners_with_two_workers_each_share_one_store(tmp_path):
    matrix = write_matrix(tmp_path / "m.yaml", list("abcdef"), steps=5, step_ms=100)
    store = tmp_path / "runs"
    procs = [fake_cli(matrix, store, "--workers", "2", "--quiet") for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
    assert outcomes(store) == ["completed"] * 6
    assert starts(store) == 6
    assert not any((d / "cell.log.1").exists() for d in cell_dirs(store))


def real_matrix(tmp_path) -> dict:
    """smoke.yaml's cells, plus one that runs out of its memory budget and one that raises."""
    base = yaml.safe_load((REPO / "experiments" / "smoke.yaml").read_text())["base"]
    base["data"]["cache_dir"] = str(tmp_path / "data")
    return {
        "name": "real",
        "base": base,
        "matrix": {"case": [case(tmp_path, *c) for c in CASES]},
    }


CASES = [  # attention.mode, runtime.memory_budget_gb, train.micro_batch, broken data
    ("causal", None, 8, False),
    ("prefix_bidirectional", None, 8, False),
    # micro_batch 128 needs well over 0.45 GB on top of the ~0.35 GB of torch itself
    ("causal", 0.45, 128, False),
    ("causal", None, 8, True),  # the cell raises DataError: a failed cell
]


def case(tmp_path, mode, budget, micro_batch, broken) -> dict:
    missing = str(tmp_path / "missing.jsonl") if broken else None
    return {
        "attention.mode": mode,
        "runtime.memory_budget_gb": budget,
        "train.micro_batch": micro_batch,
        "data.kind": "jsonl" if broken else "captcha",
        "data.train_path": missing,
        "data.val_path": missing,
    }


def check_real_outcomes(rows) -> None:
    by = [s["outcome"] for _, s, _ in rows]
    assert by == ["completed", "completed", "oom", "failed"], [s.get("error") for _, s, _ in rows]
    oom, failed = rows[2][1], rows[3][1]
    assert oom["oom"]["budget_bytes"] == int(0.45 * 2**30) and oom["written_by"] == "cell"
    assert failed["error"]["type"] == "DataError" and "missing.jsonl" in failed["error"]["message"]


@pytest.mark.slow
def test_real_cells_with_two_warm_workers_record_an_oom_and_a_failure(tmp_path):
    matrix = build_matrix(real_matrix(tmp_path), "real.yaml", [])
    store = Store(tmp_path / "runs", matrix.name)
    store.ensure_writable()
    executor = LocalProcessExecutor(workers=2, warm=True)
    try:
        result = run_plan(make_plan(matrix, matrix.cells, store, set()), executor, workers=2)
    finally:
        executor.close()
    check_real_outcomes(result.rows)


def test_a_cell_command_that_cannot_start_fails_each_cell_and_the_run_goes_on(tmp_path):
    matrix = load_matrix(write_matrix(tmp_path / "m.yaml", ["a", "b", "c"]))
    store = Store(tmp_path / "runs", matrix.name)
    executor = LocalProcessExecutor(command=[str(tmp_path / "no-such-python")], workers=2)
    result = run_plan(make_plan(matrix, matrix.cells, store, set()), executor, workers=2)
    assert result.outcomes() == ["failed"] * 3
    for _, summary, _ in result.rows:
        assert summary["written_by"] == "runner" and summary["error"]["type"] == "executor"
        assert "could not be started" in summary["error"]["message"]


def cfg(device: str = "cpu", threads: object = 1) -> dict:
    return {"runtime": {"device": device, "threads": threads}}


def test_auto_workers_fill_the_cores_or_the_gpus_never_more_than_the_cells():
    six = [cfg()] * 6
    assert auto_workers(six, cores=2, gpus=[]) == 2  # threads: 1 on 2 cores
    assert auto_workers(six, cores=16, gpus=[]) == 6  # never more than the cells
    assert auto_workers([cfg(threads=4)] * 6, cores=16, gpus=[]) == 4
    assert auto_workers([cfg(threads=4), cfg(threads=8)], cores=16, gpus=[]) == 2
    assert auto_workers([cfg(threads=4)], cores=2, gpus=[]) == 1  # more threads than cores
    assert auto_workers([cfg(threads="auto")] * 6, cores=16, gpus=[]) == 1  # uses every core
    assert auto_workers([cfg(threads=None)] * 6, cores=16, gpus=[]) == 1
    assert auto_workers([cfg("auto")] * 6, cores=16, gpus=["0", "1", "2"]) == 3  # one per GPU
    assert auto_workers([cfg("cuda")] * 6, cores=16, gpus=["0"]) == 1
    assert auto_workers([cfg("auto")] * 6, cores=2, gpus=[]) == 2  # auto without a GPU: CPU
    assert auto_workers([], cores=2, gpus=[]) == 1


def test_the_matrix_workers_key_is_validated():
    base = {"name": "w", "matrix": {"seed": [0, 1]}}
    assert build_matrix(base, "w.yaml", []).workers == 1
    assert build_matrix({**base, "workers": "auto"}, "w.yaml", []).workers == "auto"
    assert build_matrix({**base, "workers": 3}, "w.yaml", []).workers == 3
    for bad in (0, -1, "two", 2.5, True, 10**6):
        with pytest.raises(ConfigError, match="`workers`: expected `auto` or an integer"):
            build_matrix({**base, "workers": bad}, "w.yaml", [])
    ids = {c.cell_id for c in build_matrix(base, "w.yaml", []).cells}
    assert ids == {c.cell_id for c in build_matrix({**base, "workers": 2}, "w.yaml", []).cells}


@pytest.mark.slow
def test_the_matrix_workers_key_runs_cells_at_once_and_the_flag_wins(tmp_path):
    path = write_matrix(tmp_path / "m.yaml", list("abcd"), steps=5, step_ms=100)
    raw = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**raw, "workers": 2}))
    store = tmp_path / "runs"
    proc = fake_cli(path, store)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert "2 workers" in out + err and outcomes(store) == ["completed"] * 4
    proc = fake_cli(path, tmp_path / "runs1", "--workers", "1")
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert "workers" not in out + err and outcomes(tmp_path / "runs1") == ["completed"] * 4


def test_shipped_demo_matrix_runs_one_cell_per_core():
    demo = load_matrix(REPO / "experiments" / "attention.yaml")
    assert demo.workers == "auto"
    assert auto_workers([c.config for c in demo.cells], cores=2, gpus=[]) == 2


def test_the_workers_line_says_what_each_slot_gets():
    assert describe(slot_envs(1, {}, cores=2)) == "1 worker"
    assert describe(slot_envs(2, {}, cores=2)) == "2 workers (1 thread each)"
    two_gpus = slot_envs(2, {"CUDA_VISIBLE_DEVICES": "0,1"}, cores=8)
    assert describe(two_gpus) == "2 workers (4 threads each; GPU 0, 1)"
    assert describe(slot_envs(2, {"OMP_NUM_THREADS": "3"}, cores=8)) == "2 workers"
