"""Cells as Ray tasks: ``run_matrix.py --executor ray [--address ADDR]`` (``pip install '.[ray]'``).

Each cell is one Ray task that declares what the cell needs (``resources``) and starts the cell
command in its own process group inside a fresh Ray worker (``max_calls=1``: the worker exits
after the cell, so nothing, GPU memory included, outlives it). ``max_retries=0``: an OOM or a
crash is a result, never retried. The task enforces the cell's time limit from the cell's own
process start (a task may wait in Ray's queue first) and kills the group past it. Ctrl-C reaches
running cells through a small control actor the tasks poll: ``interrupt`` forwards SIGINT (the
cell writes its `interrupted` summary), ``kill`` sends SIGKILL.

The run store must be a path that every node sees at the same place (a shared filesystem): the
cell writes its files there, and the runner reads them, locks cells and writes the summaries of
cells that could not, exactly as locally. Without ``--address`` (and without ``RAY_ADDRESS``) a
local Ray instance is started for the run and stopped after it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from harness.contracts.paths import with_repo_on_path
from harness.contracts.procs import signal_group, start_cell_process
from harness.runner.task import CellHandle, CellTask, ExecutorError, ExitStatus

INSTALL_HINT = (
    "--executor ray needs Ray, an optional extra: pip install '.[ray]' in a checkout "
    "(or pip install 'ray>=2.40')"
)
TASK_POLL_S = 0.5
"""How often a task checks its cell and the control actor."""
FORCE_AFTER_S = 10.0
"""After a kill request, how long a task gets before its whole Ray worker is cancelled."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(INSTALL_HINT) from None
    return ray


def resources(runtime: dict[str, Any], cluster_gpus: float) -> dict[str, Any]:
    """Ray task options for a cell, from its ``runtime`` section: one GPU when it runs on CUDA
    (``device: cuda``, or ``auto`` on a cluster that has GPUs), ``runtime.threads`` CPUs (1 when
    unset), and on CPU its ``memory_budget_gb`` as Ray's ``memory`` (a GPU budget is GPU memory,
    which Ray does not count)."""
    device = runtime.get("device", "auto")
    gpus = 1 if device == "cuda" or (device == "auto" and cluster_gpus > 0) else 0
    threads = runtime.get("threads")
    cpus = threads if isinstance(threads, int) and threads > 0 else 1
    options: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": 0}
    budget = runtime.get("memory_budget_gb")
    if budget and not gpus:
        options["memory"] = int(budget * 2**30)
    return options


class Control:
    """A Ray actor holding the runner's requests per cell (``interrupt`` or ``kill``)."""

    def __init__(self) -> None:
        self.requests: dict[str, str] = {}

    def request(self, cell_id: str, what: str) -> None:
        if self.requests.get(cell_id) != "kill":
            self.requests[cell_id] = what

    def get(self, cell_id: str) -> str | None:
        return self.requests.get(cell_id)


class _Requests:
    """The runner's latest request for one cell, read from the control actor without ever
    blocking: a task that blocks in ``ray.get`` or ``ray.wait`` on an object not yet ready lends
    its CPUs to other tasks, which then run more cells at once than the node has CPUs. An
    ObjectRef's ``future()`` completes in the background instead."""

    def __init__(self, control: Any, cell_id: str) -> None:
        self.control, self.cell_id = control, cell_id
        self.future = control.get.remote(cell_id).future()
        self.answered = False
        self.latest: str | None = None

    def poll(self) -> str | None:
        if self.future is not None and self.future.done():
            try:
                self.latest = self.future.result()
            except Exception:  # the actor is gone with the runner's node: run on, unsteered
                self.future = None
            else:
                self.future = self.control.get.remote(self.cell_id).future()
            self.answered = True
        return self.latest

    def first(self, timeout: float) -> str | None:
        end = time.monotonic() + timeout
        while not self.answered and time.monotonic() < end:
            self.poll()
            time.sleep(0.01)
        return self.latest


def run_cell_task(spec: dict[str, Any], control: Any) -> dict[str, Any]:
    """The body of a cell's Ray task, on a Ray worker: run the cell process group to its end."""
    requests = _Requests(control, spec["cell_id"])
    if requests.first(timeout=5.0):  # stopped while it waited in Ray's queue
        return {"returncode": None, "signal": None}  # the runner records it `interrupted`
    command = spec["command"] or [sys.executable, "-m", "harness.cell"]
    # with Ray's CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS
    env = with_repo_on_path({**os.environ, "PYTHONUNBUFFERED": "1"})
    proc = start_cell_process([*command, *spec["argv"]], env, spec["log_path"])
    kill_at = time.monotonic() + spec["kill_after_s"] if spec["kill_after_s"] else None
    timed_out = interrupted = False
    while True:
        try:
            rc = proc.wait(timeout=TASK_POLL_S)
            break
        except subprocess.TimeoutExpired:
            pass
        what = requests.poll()
        if what == "interrupt" and not interrupted:
            interrupted = True
            signal_group(proc.pid, signal.SIGINT)
        if what == "kill":
            signal_group(proc.pid, signal.SIGKILL)
        if kill_at and time.monotonic() >= kill_at and not (timed_out or interrupted):
            timed_out = True
            signal_group(proc.pid, signal.SIGKILL)
    return {
        "returncode": rc if rc >= 0 else None,
        "signal": -rc if rc < 0 else None,
        "timed_out": timed_out,
    }


class RayExecutor:
    """Runs cells as Ray tasks on a cluster (joined by address) or a local Ray instance."""

    def __init__(
        self,
        address: str | None = None,
        command: list[str] | None = None,
        num_cpus: int | None = None,
        object_store_memory: int | None = None,
    ) -> None:
        ray = self.ray = import_ray()
        self.command = command
        self.notes: list[str] = []
        self.owns_connection = not ray.is_initialized()
        if self.owns_connection:
            _connect(ray, address, num_cpus, object_store_memory)
        self.task = ray.remote(max_calls=1)(run_cell_task)
        self.control = (
            ray.remote(Control).options(num_cpus=0, scheduling_strategy=_here(ray)).remote()
        )
        self.gcs_address = ray.get_runtime_context().gcs_address
        self.lost = False
        """A cell was lost with its node: ``gone`` then asks whether the whole cluster went."""
        total = ray.cluster_resources()
        self.cluster_gpus = float(total.get("GPU", 0))
        self.cluster_cpus = float(total.get("CPU", 0))
        self.notes.append(
            f"Ray cluster: {self.cluster_cpus:g} CPU(s), {self.cluster_gpus:g} GPU(s)"
        )

    def start(self, task: CellTask) -> RayHandle:
        options = resources(task.runtime, self.cluster_gpus)
        if options["num_cpus"] > self.cluster_cpus or options["num_gpus"] > self.cluster_gpus:
            self.notes.append(
                f"{task.cell_id} asks for {options['num_cpus']} CPU(s) and "
                f"{options['num_gpus']} GPU(s), more than the cluster has now: it waits until "
                "such a node joins (Ctrl-C stops it)"
            )
        spec = {
            "cell_id": task.cell_id,
            "command": self.command,
            "argv": task.argv(),
            "log_path": str(task.log_path),
            "kill_after_s": task.kill_after_s,
        }
        ref = self.task.options(**options).remote(spec, self.control)
        handle = RayHandle(self.ray, ref, self.control, task.cell_id)
        handle.gcs_address = self.gcs_address
        return handle

    def wait_any(
        self, handles: Sequence[CellHandle], timeout: float
    ) -> list[tuple[CellHandle, ExitStatus]]:
        by_ref = {h.ref: h for h in handles if isinstance(h, RayHandle)}
        if not by_ref:
            return []
        refs = list(by_ref)
        first, _ = self.ray.wait(refs, num_returns=1, timeout=timeout)
        if not first:
            return []
        rest, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        order = first + [r for r in rest if r not in first]  # the first to complete first
        ended = [(by_ref[r], by_ref[r].result()) for r in order]
        self.lost = self.lost or any(status.lost for _, status in ended)
        return ended

    @property
    def gone(self) -> str | None:
        """After the run: why the whole cluster is gone (the runner then ends with one line and
        exit 1), or None. Asked only when a cell was lost with its node."""
        if not self.lost:
            return None
        for attempt in range(3):  # a head going down answers a little longer than its nodes
            why = _cluster_gone(self.gcs_address)
            if why or attempt == 2:
                return why
            time.sleep(1.0)
        return None

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes

    def close(self) -> None:
        if not self.ray.is_initialized():
            return
        if self.owns_connection:
            self.ray.shutdown()
        else:
            self.ray.kill(self.control)


class RayHandle:
    """A cell's Ray task; its time limit is enforced inside the task."""

    enforces_deadline = True

    def __init__(self, ray: Any, ref: Any, control: Any, cell_id: str) -> None:
        self.ray, self.ref, self.control, self.cell_id = ray, ref, control, cell_id
        self.status: ExitStatus | None = None
        self.kill_sent: float | None = None
        self.gcs_address: str | None = None
        """The cluster's head: a task that failed while it answers no more was lost with it."""
        self.cancelled = False

    def poll(self) -> ExitStatus | None:
        if self.status is None and self.ray.wait([self.ref], timeout=0)[0]:
            return self.result()
        return self.status

    def result(self) -> ExitStatus:
        if self.status is None:
            self.status = self._fetch()
        return self.status

    def _fetch(self) -> ExitStatus:
        exceptions = self.ray.exceptions
        try:
            out = self.ray.get(self.ref)
        except exceptions.OutOfMemoryError as exc:  # Ray's memory monitor killed the worker
            return ExitStatus(None, signal.SIGKILL, reason=f"Ray: {_first_line(exc)}")
        except exceptions.RayError as exc:  # the worker or its node died, or it was cancelled
            reason = f"Ray task failed: {_first_line(exc)}"
            lost = _node_lost(exceptions, exc) or bool(
                self.gcs_address and _cluster_gone(self.gcs_address)
            )
            return ExitStatus(None, None, reason=reason, lost=lost)
        return ExitStatus(out["returncode"], out["signal"], bool(out.get("timed_out")))

    def interrupt(self) -> None:
        if self.status is None:
            self.control.request.remote(self.cell_id, "interrupt")

    def kill(self) -> None:
        if self.status is not None:
            return
        now = time.monotonic()
        if self.kill_sent is None:
            self.kill_sent = now
            self.control.request.remote(self.cell_id, "kill")
        elif now - self.kill_sent > FORCE_AFTER_S and not self.cancelled:
            self.cancelled = (
                True  # the task itself is stuck: end its worker (the cell dies with it)
            )
            self.ray.cancel(self.ref, force=True)


def _here(ray: Any) -> Any:
    """Pin the control actor to the runner's own node: an actor without CPUs may land on any
    node, and one placed on a worker node would die with it, taking every cell's task along."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)


def _connect(
    ray: Any, address: str | None, num_cpus: int | None, object_store_memory: int | None
) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address:
            _check_reachable(address)
            ray.init(address=address, **quiet)
            return
        # a local instance: its workers import this checkout's harness
        os.environ["PYTHONPATH"] = with_repo_on_path(os.environ)["PYTHONPATH"]
        ray.init(
            address="local",
            num_cpus=num_cpus,
            object_store_memory=object_store_memory,
            include_dashboard=False,
            **quiet,
        )
    except ConnectionError as exc:
        raise ExecutorError(
            f"cannot connect to the Ray cluster at {address}: {_first_line(exc)}; start one "
            "with `ray start --head` on the head node, or leave out --address to run on a "
            "local Ray instance"
        ) from None


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on an address nothing answers at (Ray itself retries for minutes)."""
    if address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(
            f"--address {address!r} is not HOST:PORT; give the head node's address, e.g. "
            "10.0.0.1:6379 (what `ray start --head` prints)"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {address} ({exc.strerror or exc})") from None


def _cluster_gone(address: str) -> str | None:
    """Why the whole cluster is gone (its head answers no more), or None while it answers."""
    try:
        _check_reachable(address, timeout=3.0)
    except (ConnectionError, ExecutorError) as exc:
        return f"the Ray cluster at {address} is gone ({exc})"
    return None


def _node_lost(exceptions: Any, exc: BaseException) -> bool:
    """The task's node died (removed, crashed, preempted): Ray says so in the error's type, or,
    for a task whose node vanished, only in its message."""
    dead = (exceptions.NodeDiedError, exceptions.LocalRayletDiedError)
    return isinstance(exc, dead) or "node it was running on is dead" in str(exc)


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # RayTaskError: what the task itself raised
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {_first_line(cause)}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
