"""--executor slurm on a real Slurm (``bash .ci/install-slurm``: one node, real sbatch, sacct over
slurmdbd): the smoke matrix's cells and ids as locally, with job ids recorded; Slurm's time
limit as `timeout` with Slurm's reason; scancel as `interrupted`; the runner SIGKILLed with jobs
in the queue and run again submits no second job (sacct) and ends with one summary per cell;
--detach, then a plain run, collects. Without Slurm these skip with one line (fail with CI=true).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import FAKE_COMMAND, REPO, write_matrix
from .test_cli import wait_for

INSTALL = "no running Slurm here (scontrol ping, sacct); get a one-node one: bash .ci/install-slurm"
pytestmark = pytest.mark.slow


def slurm_problem() -> str | None:
    """Why the real-Slurm tests cannot run here, or None."""
    if shutil.which("sbatch") is None or shutil.which("sacct") is None:
        return "sbatch/sacct not installed"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
        acct = subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if "UP" not in ping.stdout:
        return f"the controller is down ({ping.stdout.strip() or ping.stderr.strip()})"
    if acct.returncode != 0:
        return "sacct does not answer (slurmdbd)"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    pytest.importorskip("submitit", reason="pip install '.[slurm]'")
    problem = slurm_problem()
    if problem and os.environ.get("CI") == "true":
        pytest.fail(f"CI needs a real Slurm: {problem}; .ci/run calls bash .ci/install-slurm")
    if problem:
        pytest.skip(f"{INSTALL} ({problem})")


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "run_matrix.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(REPO / "run_matrix.py"), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def job_of(cell_dir: Path) -> dict:
    return json.loads((cell_dir / "cell.json").read_text()).get("job") or {}


def sacct_jobs(job_name: str) -> list[tuple[str, str]]:
    """(job id, state) of every job of this name sacct knows (requeues on separate lines)."""
    done = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-D", "-S", "now-1hours", "--name", job_name, "-o",
         "JobID,State"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return [tuple(line.split("|")[:2]) for line in done.stdout.splitlines() if line]


def fake_matrix(tmp_path: Path, behaviours: list[str], name: str, slurm: str = "", **kw) -> Path:
    """A fake-cell matrix with a unique name (the jobs' name: sacct finds them by it)."""
    path = write_matrix(tmp_path / "m.yaml", behaviours, **kw)
    text = path.read_text().replace("name: fake", f"name: {name}")
    path.write_text(text + f'slurm: {{time_limit: "1"{slurm}}}\n')
    return path


def unique(stem: str) -> str:
    return f"{stem}{os.getpid()}x{time.time_ns() % 10**9}"


def test_the_smoke_matrix_through_sbatch_gives_the_local_ids_and_results(slurm, tmp_path):
    smoke = REPO / "experiments" / "smoke.yaml"
    store = tmp_path / "runs"
    cache = f"data.cache_dir={tmp_path / 'data'}"
    local = run_cli(str(smoke), "--store", str(tmp_path / "local"), "--set", cache, "--quiet")
    assert local.returncode == 0, local.stderr
    local_ids = [p.name for p in cell_dirs_of(tmp_path / "local" / "smoke")]
    done = run_cli(str(smoke), "--store", str(store), "--set", cache, "--executor", "slurm",
                   "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    dirs = cell_dirs_of(store / "smoke")
    assert [d.name for d in dirs] == local_ids
    for d in dirs:
        summary = json.loads((d / "summary.json").read_text())
        assert summary["outcome"] == "completed" and summary["written_by"] == "cell"
        assert (d / "predictions.jsonl").stat().st_size > 0
        job = job_of(d)
        assert job["executor"] == "slurm" and job["state"] == "COMPLETED"
        states = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-j", job["id"], "-o", "State"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.split()  # fmt: skip
        assert states == ["COMPLETED"]
        here = tmp_path / "local" / "smoke" / d.name  # the same numbers, bit for bit
        assert (d / "predictions.jsonl").read_bytes() == (here / "predictions.jsonl").read_bytes()
        assert summary["metrics"] == json.loads((here / "summary.json").read_text())["metrics"]


def test_a_cell_over_its_slurm_time_limit_ends_timeout_with_slurms_reason(slurm, tmp_path):
    name = unique("timeout")
    matrix = fake_matrix(tmp_path, ["hang"], name)
    store = tmp_path / "runs"
    done = run_cli(str(matrix), "--store", str(store), "--executor", "slurm",
                   "--cell-command", FAKE_COMMAND, "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr  # a timeout is a result
    (cell,) = [p for p in (store / name).iterdir() if p.is_dir() and p.name[0] != "."]
    summary = json.loads((cell / "summary.json").read_text())
    assert summary["outcome"] == "timeout"
    assert summary["error"]["type"] == "slurm_timeout"
    assert "TIMEOUT" in summary["error"]["message"] and "TimeLimit" in summary["error"]["message"]
    assert summary["train"]["stop_reason"] == "timeout"
    assert job_of(cell)["state"] == "TIMEOUT"


def test_scancel_of_a_running_cell_ends_it_interrupted_and_resume_reruns_it(slurm, tmp_path):
    name = unique("scancel")
    matrix = fake_matrix(tmp_path, ["hang"], name)
    store = tmp_path / "runs"
    args = (str(matrix), "--store", str(store), "--executor", "slurm",
            "--cell-command", FAKE_COMMAND, "--quiet")  # fmt: skip
    proc = start_cli(*args)
    cell = store / name
    wait_for(lambda: cell.exists() and any((d / "metrics.jsonl").exists() for d in
                                           cell_dirs_of(cell)), timeout=120)  # fmt: skip
    (d,) = cell_dirs_of(cell)
    subprocess.run(["scancel", job_of(d)["id"]], check=True, timeout=30)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err  # as locally: the run ended, the cell runs again
    summary = json.loads((d / "summary.json").read_text())
    assert summary["outcome"] == "interrupted" and summary["error"]["type"] == "slurm_cancelled"
    assert "CANCELLED" in summary["error"]["message"]
    plan = json.loads(run_cli(*args[:3], "--dry-run", "--json").stdout)
    assert [c["action"] for c in plan["cells"]] == ["run"]  # resume runs it again


HOG = """import time
x = bytearray(400 * 2**20)
x[::4096] = b"1" * len(x[::4096])  # touched: resident
time.sleep(60)
"""


def test_a_job_over_its_slurm_memory_is_failed_never_the_cells_measured_oom(slurm, tmp_path):
    name = unique("memory")
    matrix = fake_matrix(tmp_path, ["a"], name, slurm=", mem_gb: 0.1")
    hog = tmp_path / "hog.py"
    hog.write_text(HOG)
    store = tmp_path / "runs"
    done = run_cli(str(matrix), "--store", str(store), "--executor", "slurm",
                   "--cell-command", f"{sys.executable} {hog}", "--quiet")  # fmt: skip
    assert done.returncode == 1, done.stderr  # a failed cell
    (d,) = cell_dirs_of(store / name)
    summary = json.loads((d / "summary.json").read_text())
    assert summary["outcome"] == "failed" and summary["written_by"] == "runner"
    assert summary["error"]["type"] == "slurm_out_of_memory"
    assert "OUT_OF_MEMORY" in summary["error"]["message"]
    assert "not a measured out-of-memory" in summary["error"]["message"]
    assert job_of(d)["state"] == "OUT_OF_MEMORY"


def cell_dirs_of(matrix_dir: Path) -> list[Path]:
    return sorted(p for p in matrix_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_a_runner_killed_with_jobs_queued_reruns_without_a_second_job(slurm, tmp_path):
    name = unique("kill")
    # 3 cells of 1 CPU on a 2-CPU node: two run, one waits in Slurm's queue
    matrix = fake_matrix(tmp_path, ["a", "b", "c"], name, steps=60, step_ms=100)
    store = tmp_path / "runs"
    args = (str(matrix), "--store", str(store), "--executor", "slurm",
            "--cell-command", FAKE_COMMAND, "--quiet")  # fmt: skip
    proc = start_cli(*args)
    cells = store / name
    wait_for(lambda: cells.exists() and len(cell_dirs_of(cells)) == 3
             and all(job_of(d).get("id") for d in cell_dirs_of(cells)), timeout=120)  # fmt: skip
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    first = {d.name: job_of(d)["id"] for d in cell_dirs_of(cells)}
    again = run_cli(*args[:-1])  # not --quiet: the notes say what was followed
    assert again.returncode == 0, again.stderr
    assert "followed, not resubmitted" in again.stdout + again.stderr
    for d in cell_dirs_of(cells):
        assert job_of(d)["id"] == first[d.name] and job_of(d)["state"] == "COMPLETED"
        assert not list(d.glob("summary.json.*"))  # one attempt, one summary
    assert outcomes_of(cells) == ["completed"] * 3
    jobs = sacct_jobs(f"{name}-cell")
    assert sorted(j for j, _ in jobs) == sorted(first.values())  # no second job for any cell
    assert {s for _, s in jobs} == {"COMPLETED"}


def test_detach_submits_and_exits_and_a_plain_run_collects(slurm, tmp_path):
    name = unique("detach")
    matrix = fake_matrix(tmp_path, ["a", "b"], name, steps=5, step_ms=100)
    store = tmp_path / "runs"
    args = (str(matrix), "--store", str(store), "--executor", "slurm",
            "--cell-command", FAKE_COMMAND, "--quiet")  # fmt: skip
    detached = run_cli(*args, "--detach", timeout=120)
    assert detached.returncode == 0, detached.stderr
    assert "detached: 2 cell job(s)" in detached.stderr
    ids = {d.name: job_of(d)["id"] for d in cell_dirs_of(store / name)}
    assert all(ids.values())
    collected = run_cli(*args)
    assert collected.returncode == 0, collected.stderr
    assert outcomes_of(store / name) == ["completed"] * 2
    assert sorted(j for j, _ in sacct_jobs(f"{name}-cell")) == sorted(ids.values())


def outcomes_of(matrix_dir: Path) -> list[str]:
    return [
        json.loads((d / "summary.json").read_text())["outcome"] for d in cell_dirs_of(matrix_dir)
    ]


def test_a_requeued_job_is_followed_counted_and_ends_with_one_summary(slurm, tmp_path):
    name = unique("requeue")
    matrix = fake_matrix(tmp_path, ["a"], name, steps=60, step_ms=100)
    store = tmp_path / "runs"
    args = (str(matrix), "--store", str(store), "--executor", "slurm",
            "--cell-command", FAKE_COMMAND)  # fmt: skip
    proc = start_cli(*args)
    cells = store / name
    wait_for(lambda: cells.exists() and any((d / "metrics.jsonl").exists() for d in
                                            cell_dirs_of(cells)), timeout=120)  # fmt: skip
    (d,) = cell_dirs_of(cells)
    job_id = job_of(d)["id"]
    subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=30)  # as a preemption
    wait_for(lambda: "PENDING" in scontrol_state(job_id), timeout=60)
    # Slurm holds a requeued job back for a while (BeginTime): let it start now
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "requeued 1x" in err
    summary = json.loads((d / "summary.json").read_text())
    assert summary["outcome"] == "completed"
    assert job_of(d)["requeues"] == 1 and job_of(d)["id"] == job_id
    assert (d / "cell.log.1").exists()  # the preempted attempt's log, kept
    assert json.loads((d / "slurm_job.json").read_text())["restarts"] == 1


def scontrol_state(job_id: str) -> str:
    done = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True,
                          text=True, timeout=30, check=False)  # fmt: skip
    return done.stdout


def test_ctrl_c_stops_running_and_queued_jobs_and_resume_finishes(slurm, tmp_path):
    name = unique("ctrlc")
    matrix = fake_matrix(tmp_path, ["a", "b", "c"], name, steps=300, step_ms=100)
    store = tmp_path / "runs"
    args = (str(matrix), "--store", str(store), "--executor", "slurm",
            "--cell-command", FAKE_COMMAND, "--quiet")  # fmt: skip
    proc = start_cli(*args)
    cells = store / name
    wait_for(lambda: cells.exists() and len(cell_dirs_of(cells)) == 3
             and sum((d / "metrics.jsonl").exists() for d in cell_dirs_of(cells)) == 2,
             timeout=120)  # fmt: skip
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Resume with" in err and "Traceback" not in err
    summaries = [json.loads((d / "summary.json").read_text()) for d in cell_dirs_of(cells)]
    assert [s["outcome"] for s in summaries] == ["interrupted"] * 3
    # the two running cells wrote theirs (the fake cell leaves written_by out), the queued not
    assert sorted(s.get("written_by", "cell") for s in summaries) == ["cell", "cell", "runner"]
    ended = {state.split()[0] for _, state in sacct_jobs(f"{name}-cell")}
    assert ended <= {"COMPLETED", "CANCELLED"}  # none left in the queue
    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert outcomes_of(cells) == ["completed"] * 3
