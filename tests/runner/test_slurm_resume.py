"""A real cell on the real one-node Slurm, stopped at a random step, continues from its last
resume point (``checkpoint.resume_every``, issue 26) and ends bit-identical to an uninterrupted
local run: preempted (``scontrol requeue``: Slurm starts the same job again, which resumes in
the same folder), and SIGKILLed inside its job (the runner records `failed`, ``--rerun
failed`` submits a new job that resumes). Uses the local resume test's matrix and comparison
(``test_resume_kill.py``)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from harness.contracts import schema

from .test_cli import wait_for
from .test_slurm import job_of, scontrol_state, slurm  # noqa: F401  (the fixture)

rk = pytest.importorskip(
    "tests.runner.test_resume_kill", reason="needs the resume points of issue 26"
)
reference = rk.reference  # the uninterrupted local run (a module fixture)
read_resume_manifest = pytest.importorskip("harness.contracts.store_files").read_resume_manifest
pytestmark = pytest.mark.slow


def the_cell(store: Path) -> Path:
    (cell,) = [p for p in (store / "resume").iterdir() if p.is_dir() and p.name[0] != "."]
    return cell


def started(store: Path) -> bool:
    root = store / "resume"
    return root.is_dir() and any(
        (p / schema.LOG_FILE).exists() for p in root.iterdir() if p.is_dir() and p.name[0] != "."
    )


def node_idle() -> bool:
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return done.stdout.split() == ["idle"]


def point_step(cell_dir: Path) -> int:
    return read_resume_manifest(cell_dir / schema.RESUME_DIR / schema.RESUME_MANIFEST)["step"]


@pytest.mark.parametrize("how", ["preempted", "cell_sigkill"])
def test_a_stopped_slurm_cell_resumes_bit_identical(slurm, reference, tmp_path, how):  # noqa: F811
    matrix, ref = reference
    store = tmp_path / "runs"
    kill_step = random.Random(f"26-slurm-{how}").randint(*rk.KILL_STEPS)
    every = f"checkpoint.resume_every={rk.EVERY}"
    runner = rk.run_matrix(matrix, store, "--set", every, "--executor", "slurm", wait=False)
    wait_for(lambda: started(store), timeout=300)
    cell_dir = the_cell(store)
    wait_for(lambda: rk.train_steps(cell_dir) >= kill_step, timeout=300)
    job_id = job_of(cell_dir)["id"]
    if how == "preempted":
        subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=30)
        wait_for(lambda: "JobState=PENDING" in scontrol_state(job_id), timeout=120)
        wait_for(lambda: "ended_unix" in (cell_dir / "slurm_job.json").read_text(), timeout=120)
        wait_for(node_idle, timeout=120)  # slurmd let go of the attempt: it may start again
        at = point_step(cell_dir)  # what the preempted attempt left
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
        out, _ = runner.communicate(timeout=600)
        assert runner.returncode == 0, out
        assert job_of(cell_dir)["requeues"] == 1 and job_of(cell_dir)["id"] == job_id
    else:
        pid = rk.cell_pid(cell_dir)
        assert pid is not None, "the cell process is not there"
        os.kill(pid, signal.SIGKILL)
        runner.communicate(timeout=300)
        first = json.loads((cell_dir / schema.SUMMARY_FILE).read_text())
        assert first["outcome"] == "failed" and "SIGKILL" in first["error"]["message"]
        at = point_step(cell_dir)
        again = rk.run_matrix(matrix, store, "--set", every, "--executor", "slurm",
                              "--rerun", "failed")  # fmt: skip
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"resuming at step {at}/{rk.STEPS}" in again.stderr
        assert job_of(cell_dir)["id"] != job_id  # a new job for the failed cell
    assert rk.train_steps(cell_dir) == rk.STEPS
    summary = json.loads((cell_dir / schema.SUMMARY_FILE).read_text())
    assert summary["outcome"] == "completed" and summary["train"]["resumed_at"] == at
    rk.assert_same_result(ref, cell_dir)
