"""The Slurm executor without a cluster: what Slurm's commands print, parsed; Slurm's endings as
the harness's outcomes; the ``slurm:`` section and the flags validated in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.runner.matrix import build_matrix
from harness.runner.slurm_config import SlurmConfig
from harness.runner.slurm_executor import job_options
from harness.runner.slurm_states import (
    ENDINGS,
    JobState,
    expand_tasks,
    parse_sacct,
    parse_scontrol,
    slurm_ending,
)

from .conftest import REPO, write_matrix

SCONTROL = """\
JobId=7 ArrayJobId=5 ArrayTaskId=2-3%2 JobName=fake-cell UserId=root(0) JobState=PENDING Reason=JobArrayTaskLimit Restarts=0 ExitCode=0:0 NodeList=(null) TimeLimit=00:01:00
JobId=6 ArrayJobId=5 ArrayTaskId=1 JobName=fake-cell JobState=RUNNING Reason=None Restarts=2 ExitCode=0:0 NodeList=vm TimeLimit=00:01:00
JobId=5 ArrayJobId=5 ArrayTaskId=0 JobName=fake-cell JobState=TIMEOUT Reason=TimeLimit Restarts=0 ExitCode=0:15 NodeList=vm TimeLimit=00:01:00
JobId=9 JobName=x JobState=CANCELLED Reason=None Restarts=0 ExitCode=0:15 NodeList=vm
"""


def test_scontrol_lines_give_every_array_task_its_state():
    wanted = {"5_0", "5_1", "5_2", "5_3", "9", "5_4"}
    got = parse_scontrol(SCONTROL, wanted)
    assert sorted(got) == ["5_0", "5_1", "5_2", "5_3", "9"]  # 5_4 is unknown to Slurm
    assert got["5_2"].state == got["5_3"].state == "PENDING" and got["5_2"].queued
    assert got["5_1"].active and not got["5_1"].queued and got["5_1"].restarts == 2
    assert got["5_1"].node == "vm" and got["5_2"].node == ""
    timeout = got["5_0"]
    assert not timeout.active
    assert timeout.words() == "TIMEOUT (reason TimeLimit, time limit 00:01:00, exit code 0:15)"


def test_sacct_lines_count_requeues_and_keep_the_state_detail():
    text = "12|PREEMPTED|None|0:0|vm\n12|CANCELLED by 0|None|0:15|vm\n13|COMPLETED|None|0:0|vm\n"
    got = parse_sacct(text, {"12", "13"})
    assert got["12"].state == "CANCELLED" and got["12"].detail == "by 0"
    assert got["12"].restarts == 1 and got["13"].restarts == 0


@pytest.mark.parametrize(
    ("spec", "tasks"),
    [
        ("0-3%2", ["0", "1", "2", "3"]),
        ("1,4,6-7", ["1", "4", "6", "7"]),
        ("0-6:3", ["0", "3", "6"]),
    ],
)
def test_array_task_specs_expand(spec, tasks):
    assert expand_tasks(spec) == tasks


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ("TIMEOUT", "timeout"),
        ("OUT_OF_MEMORY", "failed"),
        ("NODE_FAIL", "interrupted"),
        ("PREEMPTED", "interrupted"),
        ("CANCELLED", "interrupted"),
        ("BOOT_FAIL", "interrupted"),
    ],
)
def test_each_slurm_ending_is_a_typed_outcome_with_slurms_words(state, outcome):
    ending = slurm_ending(JobState("41_3", state, reason="SomeReason"))
    assert ending is not None
    got, kind, message = ending
    assert got == outcome and kind == "slurm_" + state.lower()
    assert state in message and "SomeReason" in message and "job 41_3" in message


def test_a_slurm_memory_kill_is_never_the_cells_measured_oom():
    assert all(outcome != "oom" for outcome, _, _ in ENDINGS.values())
    _, kind, message = slurm_ending(JobState("1", "OUT_OF_MEMORY"))
    assert kind == "slurm_out_of_memory" and "not a measured out-of-memory" in message


@pytest.mark.parametrize("state", ["COMPLETED", "FAILED"])
def test_a_job_that_ran_to_its_end_leaves_the_cells_record_alone(state):
    assert slurm_ending(JobState("1", state)) is None


def test_the_slurm_section_is_read_and_resources_follow_the_cell():
    raw = {
        "base": {"runtime": {"threads": 2, "device": "cpu"}},
        "matrix": {"seed": [0]},
        "executor": "slurm",
        "slurm": {
            "partition": "gpu",
            "time_limit": "2:00:00",
            "mem_gb": 4,
            "sbatch_flags": ["--qos=high", "--exclusive"],
        },
    }
    matrix = build_matrix(raw, "m.yaml", [])
    assert matrix.executor == "slurm" and matrix.slurm.partition == "gpu"
    assert matrix.slurm.sbatch_extra() == {"qos": "high", "exclusive": True}
    assert job_options(matrix.slurm, matrix.cells[0].config["runtime"]) == (2, 0)
    assert job_options(SlurmConfig(gpus_per_cell=2), {"device": "cuda"}) == (1, 2)
    assert job_options(SlurmConfig(), {"device": "cuda", "threads": None}) == (1, 1)
    same = build_matrix({k: raw[k] for k in ("base", "matrix")}, "m.yaml", [])
    assert same.cells[0].cell_id == matrix.cells[0].cell_id  # not part of any cell's id


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"time_limit": "soon"}, "`slurm.time_limit`: 'soon' is not an sbatch --time"),
        ({"sbatch_flags": ["--array=0-3"]}, "the executor sets --array itself"),
        ({"sbatch_flags": ["qos high"]}, "is not `--name=value`"),
        ({"partitions": "gpu"}, "did you mean"),
        ({"mem_gb": 0}, "`slurm.mem_gb`: expected a number > 0"),
    ],
)
def test_a_bad_slurm_section_is_one_line_and_exit_2(tmp_path, section, words):
    path = write_matrix(tmp_path / "m.yaml", ["ok"])
    path.write_text(path.read_text() + f"slurm: {section!r}\n".replace("'", '"'))
    done = subprocess.run(
        [sys.executable, str(REPO / "run_matrix.py"), str(path), "--store", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()


def test_detach_without_slurm_is_one_line(tmp_path):
    path = write_matrix(tmp_path / "m.yaml", ["ok"])
    done = subprocess.run(
        [sys.executable, str(REPO / "run_matrix.py"), str(path), "--detach"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "--detach only applies to --executor slurm" in done.stderr


def test_the_live_display_shows_each_cluster_job_queued_running_or_done():
    from .test_progress import CELLS, live, screen

    progress, _, clock = live(160)
    progress.start(3)
    for c in CELLS:
        progress.cell_start(c, c.config["train"]["max_steps"])
    progress.cell_phase(CELLS[0], "running")
    progress.cell_phase(CELLS[1], "queued")
    progress.cell_phase(CELLS[2], "queued")
    clock.now = 5.0
    progress.record(CELLS[0], {"kind": "train", "step": 1, "loss": 2.0})
    rows = screen(progress, 160)
    assert rows[0].endswith("0/3 done · 1 running · 2 queued · 0:05")
    assert rows[2].endswith("loss -  0:05  queued") and rows[3].endswith("queued")
    progress.cell_end(CELLS[0], {"outcome": "completed", "metrics": {"exact_match": 1.0}})
    assert "1/3 done · 2 queued · 0:05" in screen(progress, 160)[0]
    progress.close()
