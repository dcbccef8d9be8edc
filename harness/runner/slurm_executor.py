"""Cells as Slurm jobs through submitit: ``run_matrix.py --executor slurm`` (or ``executor:
slurm`` and a ``slurm:`` section in the matrix file, ``slurm_config.py``).

One job per cell; the cells the runner hands over together go as one job array (one array per
distinct resource request), at most ``slurm.array_parallelism`` running at once. Each job runs
``slurm_job.run_cell_job``: the same cell command as the local executor, so cell ids, files and
results are the same. The store, on a filesystem the nodes share, stays the source of truth;
submitit's own files go to ``STORE/<matrix>/.slurm/``.

The runner records each cell's job id in ``cell.json`` (``job``) as soon as sbatch answers. A
runner stopped hard (SIGKILL, logout) leaves its jobs queued or running; the same command run
again ``adopt``s every cell whose recorded job Slurm still holds (followed, never submitted a
second time), collects the ones that ended meanwhile, and submits only cells whose job is gone.
With ``--detach`` the runner submits and exits; a later plain run collects.

Ctrl-C stops cleanly, as locally: each running job sends its cell SIGINT (asked through a file
in the cell's folder, ``slurm_job.STOP_FILE``), the cells write `interrupted`; queued jobs are
cancelled. How Slurm ended a job becomes the
cell's outcome (``slurm_states.slurm_ending``), with Slurm's words in ``error.message``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.contracts.paths import with_repo_on_path
from harness.contracts.schema import CELL_FILE, SUMMARY_FILE
from harness.contracts.store_files import atomic_write_text, write_json
from harness.runner.outcomes import log_tail
from harness.runner.slurm_config import SlurmConfig, describe
from harness.runner.slurm_job import JOB_FILE, STOP_FILE, run_cell_job
from harness.runner.slurm_states import JobState, query_jobs, slurm_ending
from harness.runner.task import CellHandle, CellTask, ExecutorError, ExitStatus

INSTALL_HINT = (
    "--executor slurm needs submitit (pip install '.[slurm]') and Slurm's client commands "
    "(sbatch, scontrol) on this machine; for a one-node Slurm here: bash .ci/install-slurm"
)
KILL_RESEND_S = 10.0
"""How often a kill request is repeated while Slurm has not ended the job."""


def import_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ExecutorError(INSTALL_HINT) from None
    return submitit


def check_cluster() -> None:
    """Fail fast, in one line, when Slurm is missing or its controller does not answer."""
    try:
        done = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExecutorError(f"{INSTALL_HINT} ({exc})") from None
    if done.returncode != 0 or "UP" not in done.stdout:
        said = (done.stdout or done.stderr).strip().splitlines()
        raise ExecutorError(
            f"the Slurm controller does not answer (scontrol ping: {said[0] if said else '?'}); "
            "check slurmctld, or start a one-node Slurm with: bash .ci/install-slurm"
        )


def job_options(config: SlurmConfig, runtime: dict[str, Any]) -> tuple[int, int]:
    """(CPUs, GPUs) a cell's job asks for: the ``slurm:`` section, else the cell's runtime."""
    threads = runtime.get("threads")
    cpus = config.cpus_per_task or (threads if isinstance(threads, int) and threads > 0 else 1)
    gpus = config.gpus_per_cell
    if gpus is None:
        gpus = 1 if runtime.get("device") == "cuda" else 0
    return cpus, gpus


class SlurmExecutor:
    """Submits cells with submitit and follows their jobs with one Slurm query per poll."""

    def __init__(
        self,
        config: SlurmConfig,
        folder: Path,
        command: list[str] | None = None,
        python: str = sys.executable,
        matrix: str = "harness",
    ) -> None:
        self.submitit = import_submitit()
        check_cluster()
        self.config, self.folder, self.command = config, Path(folder).resolve(), command
        self.python, self.matrix = python, matrix
        self.pending: list[SlurmHandle] = []
        self.notes: list[str] = [describe(config)]
        self.next_poll = 0.0
        self.unanswered = False

    # ---------------------------------------------------------------- submission

    def start(self, task: CellTask) -> SlurmHandle:
        """Queue the cell for the next submission (``flush``: one array for the cells started
        together); its job id is known, and recorded, once sbatch answers."""
        handle = SlurmHandle(self, _absolute(task))
        self.pending.append(handle)
        return handle

    def flush(self) -> None:
        """Submit every queued cell: one job array per distinct (CPUs, GPUs) request."""
        groups: dict[tuple[int, int], list[SlurmHandle]] = {}
        for handle in self.pending:
            groups.setdefault(job_options(self.config, handle.task.runtime), []).append(handle)
        self.pending = []
        for (cpus, gpus), handles in groups.items():
            self._submit(handles, cpus, gpus)

    def _submit(self, handles: list[SlurmHandle], cpus: int, gpus: int) -> None:
        executor = self.submitit.SlurmExecutor(folder=self.folder, python=self.python)
        extra = {"time": self.config.time_limit, **self.config.sbatch_extra()}
        if self.config.mem_gb:
            extra["mem"] = f"{int(self.config.mem_gb * 1024)}M"
        params: dict[str, Any] = {
            "job_name": f"{self.matrix}-cell",
            "cpus_per_task": cpus,
            "array_parallelism": self.config.array_parallelism,
            "use_srun": False,  # the job body starts the cell itself, as a process group
            "stderr_to_stdout": True,
            "additional_parameters": extra,
            "setup": [f"export PYTHONPATH={with_repo_on_path({})['PYTHONPATH']}"],
        }
        if gpus:
            params["gpus_per_node"] = gpus
        for key in ("partition", "account"):
            if getattr(self.config, key):
                params[key] = getattr(self.config, key)
        executor.update_parameters(**params)
        try:
            with executor.batch():
                jobs = [executor.submit(run_cell_job, h.spec()) for h in handles]
        except Exception as exc:  # sbatch refused (bad partition, account, limits): say why
            reason = f"sbatch refused the job: {_last_line(exc)}"
            for handle in handles:
                handle.status = ExitStatus(None, reason=reason)
            return
        for handle, job in zip(handles, jobs, strict=True):
            handle.submitted(str(job.job_id))

    def adopt(self, cell_dir: Path) -> SlurmHandle | None:
        """A handle on the job a previous runner submitted for this cell and did not collect,
        if Slurm still knows it (queued, running, or ended since); None: submit anew."""
        try:
            info = read_json(cell_dir / CELL_FILE)
        except (OSError, ValueError):
            return None
        job = info.get("job") or {}
        if not isinstance(job, dict) or not job.get("id") or info.get("finished_at"):
            return None
        try:
            state = query_jobs([str(job["id"])])[str(job["id"])]
        except OSError:
            return None
        if state.state == "UNKNOWN":
            return None
        what = "still queued" if state.queued else "running" if state.active else "ended"
        self.notes.append(
            f"{cell_dir.name}: job {state.job_id} {what} ({state.state}); followed, not resubmitted"
        )
        handle = SlurmHandle(self, None, cell_dir=cell_dir)
        handle.job_id, handle.state = state.job_id, state
        return handle

    # ---------------------------------------------------------------- following

    def wait_any(
        self, handles: Sequence[CellHandle], timeout: float
    ) -> list[tuple[CellHandle, ExitStatus]]:
        self.flush()
        ours = [h for h in handles if isinstance(h, SlurmHandle)]
        end = time.monotonic() + timeout
        while True:
            if time.monotonic() >= self.next_poll:
                self.refresh(ours)
            done = [(h, s) for h in ours if (s := h.poll()) is not None]
            if done or time.monotonic() >= end:
                return done
            time.sleep(max(0.0, min(end, self.next_poll) - time.monotonic()) or 0.05)

    def refresh(self, handles: Sequence[SlurmHandle]) -> None:
        """One Slurm query for every followed job."""
        self.next_poll = time.monotonic() + self.config.poll_s
        ids = [h.job_id for h in handles if h.job_id and h.status is None]
        if not ids:
            return
        try:
            states = query_jobs(ids)
        except OSError as exc:
            if not self.unanswered:  # once, until Slurm answers again
                self.notes.append(f"Slurm did not answer ({exc}); retrying")
            self.unanswered = True
            return
        self.unanswered = False
        for handle in handles:
            if handle.job_id in states:
                handle.update(states[handle.job_id])

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes

    def close(self) -> None:
        self.flush()  # nothing started is ever left unsubmitted


class SlurmHandle:
    """A cell's Slurm job: queued (not yet submitted, or PENDING), running, or ended."""

    enforces_deadline = True
    """The cell may wait in the queue: the job enforces its time limit from its own start."""

    def __init__(
        self, executor: SlurmExecutor, task: CellTask | None, cell_dir: Path | None = None
    ) -> None:
        self.executor, self.task = executor, task
        self.cell_dir = cell_dir or (task.cell_dir if task else Path("."))
        self.job_id: str | None = None
        self.state: JobState | None = None
        self.status: ExitStatus | None = None
        self.stopped_by_runner = False
        self.kill_sent: float | None = None

    def spec(self) -> dict[str, Any]:
        assert self.task is not None
        return {
            "cell_id": self.task.cell_id,
            "cell_dir": str(self.task.cell_dir),
            "command": self.executor.command,
            "argv": self.task.argv(),
            "log_path": str(self.task.log_path),
            "kill_after_s": self.task.kill_after_s,
        }

    def submitted(self, job_id: str) -> None:
        """sbatch answered: record the job id in cell.json at once (a runner killed from now on
        leaves a job the next run finds)."""
        self.job_id = job_id
        path = self.cell_dir / CELL_FILE
        info = read_json(path)
        info["job"] = self.record()
        write_json(path, info)

    def record(self) -> dict[str, Any]:
        """cell.json's ``job``: which Slurm job ran the cell and how Slurm saw it end."""
        state = self.state
        return {
            "executor": "slurm",
            "id": self.job_id,
            "state": state.state if state else None,
            "reason": state.words() if state else None,
            "requeues": state.restarts if state else 0,
            "node": state.node if state and state.node else None,
        }

    def update(self, state: JobState) -> None:
        previous, self.state = self.state, state
        if previous is None or previous.state != state.state:
            self.executor.notes.append(f"{self.cell_dir.name}: job {self.job_id} {state.words()}")

    def phase(self) -> str:
        """`submitting`, `queued`, `running` or `done` (the live display's words)."""
        if self.status is not None or (self.state and not self.state.active):
            return "done"
        if self.state is None or self.state.queued:
            return "queued" if self.job_id else "submitting"
        return "running"

    def poll(self) -> ExitStatus | None:
        if self.status is None and self.state is not None and not self.state.active:
            self.state = memory_kill(self.state, self.executor.folder)
            self.status = self._ended(self.state)
        return self.status

    def _ended(self, state: JobState) -> ExitStatus:
        try:
            job = read_json(self.cell_dir / JOB_FILE)
        except (OSError, ValueError):
            job = {}
        if str(job.get("job_id")) != str(self.job_id) or "ended_unix" not in job:
            job = {}  # the job body never ended the cell (killed, or never started)
        ending = slurm_ending(state)
        reason = ending[2] if ending else None
        if not job and not reason:
            reason = f"Slurm: the job ended {state.words()} without running the cell to its end"
        return ExitStatus(
            job.get("returncode"),
            job.get("signal"),
            bool(job.get("timed_out")),
            reason=reason,
        )

    def amend(self, summary: dict[str, Any]) -> dict[str, Any]:
        """The summary typed with how Slurm ended the job (time limit, cgroup memory kill, node
        failure, preemption, scancel); unchanged for a job that ran to its end, or that the
        runner itself stopped (Ctrl-C: the cell's `interrupted` says it)."""
        ending = slurm_ending(self.state) if self.state else None
        if ending is None or self.stopped_by_runner:
            return summary
        outcome, kind, message = ending
        error = dict(summary.get("error") or {})
        summary = {
            **summary,
            "outcome": outcome,
            "error": {
                "type": kind,
                "message": message,
                "phase": error.get("phase") or "train",
                "log_tail": error.get("log_tail") or log_tail(self.cell_dir / "cell.log"),
            },
        }
        train = dict(summary.get("train") or {})
        train["stop_reason"] = "error" if outcome == "failed" else outcome
        summary["train"] = train
        write_json(self.cell_dir / SUMMARY_FILE, summary)
        return summary

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to a running cell through its job (``STOP_FILE``; it writes
        `interrupted`); a queued job is cancelled; a cell not yet submitted never will be."""
        self.stopped_by_runner = True
        if self.job_id is None:
            if self.status is None and self in self.executor.pending:
                self.executor.pending.remove(self)
                self.status = ExitStatus(None, None)
            return
        if self.state is not None and not self.state.queued:
            atomic_write_text(self.cell_dir / STOP_FILE, "interrupt\n")  # the job forwards it
        else:
            _scancel([self.job_id])

    def kill(self) -> None:
        now = time.monotonic()
        if self.job_id is None or self.status is not None:
            return
        if self.kill_sent is None or now - self.kill_sent > KILL_RESEND_S:
            self.kill_sent = now
            self.stopped_by_runner = True
            _scancel([self.job_id])


def memory_kill(state: JobState, folder: Path) -> JobState:
    """A job Slurm killed for its memory without a cgroup (``JobAcctGatherParams=OverMemoryKill``)
    ends FAILED, and only its output says why: that is OUT_OF_MEMORY too."""
    if state.state != "FAILED":
        return state
    try:
        text = (folder / f"{state.job_id}_0_log.out").read_text(errors="replace")
    except OSError:
        return state
    if "Exceeded job memory limit" not in text:
        return state
    return replace(state, state="OUT_OF_MEMORY", reason="Exceeded job memory limit")


def _scancel(args: list[str]) -> None:
    # on failure the next poll shows whether the job ended
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(["scancel", *args], capture_output=True, timeout=30, check=False)


def _absolute(task: CellTask) -> CellTask:
    """The job may start in another directory: every path it gets is absolute."""
    return replace(
        task,
        config_path=task.config_path.resolve(),
        cell_dir=task.cell_dir.resolve(),
        log_path=task.log_path.resolve(),
    )


def read_json(path: Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _last_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__
