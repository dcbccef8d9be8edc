"""--executor ray on a real local Ray instance (CPU only, small object store, one per module): the
same outcomes, cell ids and result files as the local executor; an OOM and a failure recorded
while the others complete; SIGTERM midway (ray.init has its own SIGTERM handler) and resume
with nothing run twice; and the messages for Ray missing or unreachable."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys

import pytest

from harness.contracts.store_files import read_summary
from harness.runner import cli, make_plan, run_plan
from harness.runner.executor import LocalProcessExecutor
from harness.runner.matrix import build_matrix, load_matrix
from harness.runner.store import Store

from .conftest import FAKE_CELL, REPO, write_matrix
from .test_cli import cell_dirs, fake_cli, outcomes, starts, wait_for
from .test_warm import records
from .test_workers import check_real_outcomes, real_matrix

ray = pytest.importorskip("ray")
from harness.runner.ray_executor import RayExecutor  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance for this module; its workers import this checkout."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), saved["PYTHONPATH"]]))
    os.environ.pop("RAY_ADDRESS", None)
    context = ray.init(
        address="local",
        num_cpus=2,
        object_store_memory=80 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    yield context.address_info["gcs_address"]
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def run(executor, matrix, store_dir, workers):
    store = Store(store_dir, matrix.name)
    store.ensure_writable()
    return store, run_plan(make_plan(matrix, matrix.cells, store, set()), executor, workers=workers)


@pytest.mark.slow
def test_fake_cells_on_ray_end_with_the_outcomes_they_get_locally(
    cluster, tmp_path, fake_command, monkeypatch
):
    monkeypatch.setattr("harness.runner.loop.KILL_GRACE_S", 0.5)
    behaviours = ["ok", "raise", "selfkill", "exit0", "hang_ignore_term", "nan"]
    matrix = load_matrix(write_matrix(tmp_path / "m.yaml", behaviours, steps=3, timeout_s=1.5))
    on_ray = RayExecutor(command=fake_command)
    _, ray_result = run(on_ray, matrix, tmp_path / "ray", workers=len(behaviours))
    on_ray.close()
    assert ray.is_initialized()  # the runner leaves a connection it did not open
    _, local_result = run(LocalProcessExecutor(command=fake_command), matrix, tmp_path / "local", 1)
    by = {c.axes["data.question"]: s["outcome"] for c, s, _ in ray_result.rows}
    assert by == {c.axes["data.question"]: s["outcome"] for c, s, _ in local_result.rows}
    assert by["hang_ignore_term"] == "timeout" and by["raise"] == "failed"  # killed in the task
    raised = next(s for c, s, _ in ray_result.rows if c.axes["data.question"] == "raise")
    assert raised["error"]["message"] == "boom from the fake cell"


@pytest.mark.slow
def test_a_sigkill_under_a_budget_on_ray_is_recorded_as_locally(cluster, tmp_path, fake_command):
    path = write_matrix(tmp_path / "m.yaml", ["selfkill", "ok"], memory_budget_gb=0.5)
    matrix = load_matrix(path)
    _, on_ray = run(RayExecutor(command=fake_command), matrix, tmp_path / "ray", workers=2)
    _, local = run(LocalProcessExecutor(command=fake_command), matrix, tmp_path / "local", 1)
    assert on_ray.outcomes() == local.outcomes() and on_ray.outcomes()[1] == "completed"
    ray_kill, local_kill = on_ray.rows[0][1], local.rows[0][1]
    assert ray_kill["oom"] == local_kill["oom"]
    error = lambda s: s["error"] and (s["error"]["type"], s["error"]["message"])  # noqa: E731
    assert error(ray_kill) == error(local_kill)


@pytest.mark.slow  # about a minute: eight real cells, four of them cold on 2 CPUs
def test_real_cells_on_ray_match_the_local_executor(cluster, tmp_path):
    matrix = build_matrix(real_matrix(tmp_path), "real.yaml", [])
    ray_store, ray_result = run(RayExecutor(), matrix, tmp_path / "ray", workers=4)
    local = LocalProcessExecutor(workers=2, warm=True)
    try:
        local_store, local_result = run(local, matrix, tmp_path / "local", workers=2)
    finally:
        local.close()
    check_real_outcomes(ray_result.rows)
    check_real_outcomes(local_result.rows)
    for cell in matrix.cells:
        a, b = ray_store.cell_dir(cell.cell_id), local_store.cell_dir(cell.cell_id)
        assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for cell in matrix.cells[:2]:  # the completed ones: the same numbers, bit for bit
        a, b = ray_store.cell_dir(cell.cell_id), local_store.cell_dir(cell.cell_id)
        assert (
            read_summary(a / "summary.json")["metrics"]
            == read_summary(b / "summary.json")["metrics"]
        )
        assert records(a) == records(b)
        assert (a / "predictions.jsonl").read_bytes() == (b / "predictions.jsonl").read_bytes()


@pytest.mark.slow
def test_sigterm_on_ray_marks_running_cells_interrupted_and_resume_finishes(cluster, tmp_path):
    matrix = write_matrix(tmp_path / "m.yaml", ["a", "b", "c", "d"], steps=40, step_ms=100)
    store = tmp_path / "runs"
    ray_args = ("--executor", "ray", "--address", cluster)
    proc = fake_cli(matrix, store, *ray_args)
    wait_for(
        lambda: (
            (store / "fake").exists()
            and sum((d / "metrics.jsonl").exists() for d in cell_dirs(store)) == 2
        ),
        timeout=90,
    )
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Resume with" in err and cluster in err
    started = [d for d in cell_dirs(store) if (d / "metrics.jsonl").exists()]
    assert len(started) == 2  # 2 CPUs: two cells ran, the others waited in Ray's queue
    for d in started:
        summary = json.loads((d / "summary.json").read_text())
        assert summary["outcome"] == "interrupted" and summary.get("written_by") != "runner"
    assert set(outcomes(store)) == {"interrupted"}
    resumed = fake_cli(matrix, store, *ray_args, "--quiet")
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert outcomes(store) == ["completed"] * 4
    assert starts(store) == 4  # one start in each cell.log; the interrupted attempts are .1


def test_without_ray_the_flag_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    matrix = write_matrix(tmp_path / "m.yaml", ["a"])
    args = [str(matrix), "--store", str(tmp_path / "runs"), "--executor", "ray"]
    args += ["--cell-command", f"{sys.executable} {FAKE_CELL}"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "pip install '.[ray]'" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing written


def test_an_unreachable_address_is_one_clear_message(tmp_path, capsys):
    matrix = write_matrix(tmp_path / "m.yaml", ["a"])
    args = [str(matrix), "--store", str(tmp_path / "runs")]
    assert cli.main([*args, "--address", "127.0.0.1:1"]) == 2
    assert "--address only applies to --executor ray" in capsys.readouterr().err
    proc = fake_cli(matrix, tmp_path / "runs", "--executor", "ray", "--address", "127.0.0.1:1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "cannot connect to the Ray cluster at 127.0.0.1:1" in err and "ray start --head" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()
