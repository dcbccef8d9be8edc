"""What Slurm says about a cell's job, and what its ending means for the cell.

``query_jobs`` asks Slurm about many jobs in one call: ``scontrol show job`` (the controller's
view: every queued or running job, and ended ones for ``MinJobAge`` seconds, with the restart
count), then ``sacct`` for the ids the controller no longer holds (it needs accounting, i.e.
slurmdbd). A job neither knows is ``UNKNOWN`` (purged, or from another cluster). submitit's
own state watcher is not used: it asks sacct only (nothing without accounting) and at most once
a minute, while the runner wants every job's state each ``slurm.poll_s`` in one call.

``slurm_ending`` maps an ended job's state to the harness's typed outcome, keeping Slurm's
words. A job Slurm ended (time limit, cgroup memory kill, node failure, preemption, scancel)
overrides the `interrupted` summary the cell wrote when Slurm sent it SIGTERM; a job that
ran to its end (COMPLETED, FAILED) leaves the cell's own record alone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "RESV_DEL_HOLD",
    }
)
"""States of a job that is still queued or running: the runner follows it, never resubmits."""
QUEUED_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED"})

ENDINGS: dict[str, tuple[str, str, str]] = {
    "TIMEOUT": ("timeout", "slurm_timeout", "the job ran past its Slurm time limit"),
    "DEADLINE": ("timeout", "slurm_deadline", "the job reached its Slurm --deadline"),
    "OUT_OF_MEMORY": (
        "failed",
        "slurm_out_of_memory",
        "Slurm killed the job for using more memory than it asked for (slurm.mem_gb); "
        "this is not a measured out-of-memory result",
    ),
    "NODE_FAIL": ("interrupted", "slurm_node_fail", "the job's node failed"),
    "BOOT_FAIL": ("interrupted", "slurm_boot_fail", "the job's node failed to boot"),
    "PREEMPTED": ("interrupted", "slurm_preempted", "the job was preempted and not requeued"),
    "CANCELLED": ("interrupted", "slurm_cancelled", "the job was cancelled (scancel)"),
    "REVOKED": ("interrupted", "slurm_revoked", "the job was revoked (federation)"),
}
"""Slurm state -> (outcome, error type, what happened). `interrupted` cells run again on resume."""

_FIELD = re.compile(r"(\w+)=(\S*)")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?(?::(\d+))?$")


@dataclass(frozen=True)
class JobState:
    """One job (or array task) as Slurm reports it."""

    job_id: str
    state: str
    """The base state, e.g. RUNNING, TIMEOUT, CANCELLED."""
    reason: str = ""
    """Slurm's reason (pending reason, or why it ended), e.g. TimeLimit, NodeDown."""
    detail: str = ""
    """What follows the state in sacct, e.g. `by 0` after CANCELLED."""
    exit_code: str = ""
    restarts: int = 0
    """How often Slurm requeued it (preemption, node failure with --requeue)."""
    node: str = ""
    time_limit: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def queued(self) -> bool:
        return self.state in QUEUED_STATES

    def words(self) -> str:
        """Slurm's own account, e.g. `TIMEOUT (reason TimeLimit, time limit 00:01:00)`."""
        extra = [self.detail] if self.detail else []
        if self.reason and self.reason != "None":
            extra.append(f"reason {self.reason}")
        if self.time_limit and self.state in ("TIMEOUT", "DEADLINE"):
            extra.append(f"time limit {self.time_limit}")
        if self.exit_code and self.exit_code != "0:0":
            extra.append(f"exit code {self.exit_code}")
        if self.restarts:
            extra.append(f"requeued {self.restarts}x")
        return self.state + (f" ({', '.join(extra)})" if extra else "")


def slurm_ending(job: JobState) -> tuple[str, str, str] | None:
    """(outcome, error type, message) for a job Slurm ended, or None when the cell's own record
    (or its exit status) says how it ended."""
    if job.state not in ENDINGS:
        return None
    outcome, kind, what = ENDINGS[job.state]
    return outcome, kind, f"Slurm: {what}: {job.words()} (job {job.job_id})"


def query_jobs(job_ids: Iterable[str], timeout: float = 30.0) -> dict[str, JobState]:
    """The state of each job id (``123`` or an array task ``123_4``); UNKNOWN when neither the
    controller nor the accounting database knows it. Raises OSError when Slurm's commands are
    missing or the controller does not answer."""
    wanted = list(dict.fromkeys(job_ids))
    found = _from_scontrol(wanted, timeout)
    missing = [j for j in wanted if j not in found]
    if missing:
        found.update(_from_sacct(missing, timeout))
    return {j: found.get(j, JobState(j, "UNKNOWN")) for j in wanted}


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0]) is None:
        raise OSError(f"`{argv[0]}` is not installed (Slurm's client commands are needed)")
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise OSError(f"`{' '.join(argv[:3])}` did not answer in {timeout:g}s") from None


def _from_scontrol(wanted: list[str], timeout: float) -> dict[str, JobState]:
    done = _run(["scontrol", "show", "job", "-o"], timeout)
    if done.returncode != 0:
        raise OSError(f"scontrol show job failed: {(done.stderr or done.stdout).strip()}")
    return parse_scontrol(done.stdout, set(wanted))


def parse_scontrol(text: str, wanted: set[str]) -> dict[str, JobState]:
    """The wanted ids from ``scontrol show job -o`` (one job a line; a pending array's tasks
    share one line with ``ArrayTaskId=2-5%2``)."""
    out: dict[str, JobState] = {}
    for line in text.splitlines():
        fields = dict(_FIELD.findall(line))
        if "JobId" not in fields:
            continue
        ids = [fields["JobId"]]
        if fields.get("ArrayJobId") and fields.get("ArrayTaskId"):
            ids = [f"{fields['ArrayJobId']}_{t}" for t in expand_tasks(fields["ArrayTaskId"])]
        for job_id in ids:
            if job_id in wanted:
                out[job_id] = JobState(
                    job_id,
                    fields.get("JobState", "UNKNOWN"),
                    reason=fields.get("Reason", ""),
                    exit_code=fields.get("ExitCode", ""),
                    restarts=int(fields.get("Restarts", "0") or 0),
                    node=fields.get("NodeList", "").replace("(null)", ""),
                    time_limit=fields.get("TimeLimit", ""),
                )
    return out


def expand_tasks(spec: str) -> list[str]:
    """``0-3%2`` / ``1,4,6-7`` / ``0-6:2`` -> the task ids."""
    out: list[str] = []
    for part in spec.split("%", 1)[0].split(","):
        match = _RANGE.match(part)
        if not match:
            continue
        lo = int(match.group(1))
        hi = int(match.group(2) or lo)
        out += [str(t) for t in range(lo, hi + 1, int(match.group(3) or 1))]
    return out


def _from_sacct(wanted: list[str], timeout: float) -> dict[str, JobState]:
    argv = ["sacct", "-X", "-n", "-P", "-D", "-o", "JobID,State,Reason,ExitCode,NodeList"]
    try:
        done = _run([*argv, "-j", ",".join(wanted)], timeout)
    except OSError:
        return {}
    if done.returncode != 0:  # accounting disabled: the controller's view is all there is
        return {}
    return parse_sacct(done.stdout, set(wanted))


def parse_sacct(text: str, wanted: set[str]) -> dict[str, JobState]:
    """The wanted ids from ``sacct -X -P -D -o JobID,State,Reason,ExitCode,NodeList``; with -D
    a requeued job has one line per attempt (the last is its current state), which counts its
    restarts."""
    out: dict[str, JobState] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 5 or parts[0] not in wanted:
            continue
        state, _, detail = parts[1].partition(" ")
        previous = out.get(parts[0])
        restarts = previous.restarts + 1 if previous else 0
        out[parts[0]] = JobState(
            parts[0],
            state,
            reason=parts[2],
            detail=detail,
            exit_code=parts[3],
            restarts=restarts,
            node=parts[4].replace("None assigned", ""),
        )
    return out
