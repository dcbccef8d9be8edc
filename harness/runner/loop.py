"""Run the pending cells of a plan in isolation, up to N at once, and supervise each one.

Every cell ends with exactly one ``summary.json`` (``harness/contracts/schema.py``): the cell writes it,
or, when the cell could not (a crash, a kill, a hang past its time limit), the runner writes it
from what the cell left behind (``metrics.jsonl``, the tail of ``cell.log``). The runner writes
``config.yaml`` and ``cell.json``; the cell never does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.contracts.outcomes import now_iso
from harness.contracts.schema import (
    CELL_FILE,
    CONFIG_FILE,
    LOG_FILE,
    METRICS_FILE,
    RECORD_KINDS,
    CellInfo,
    SchemaError,
)
from harness.contracts.store_files import atomic_write_text, parse_line, to_json, write_json
from harness.runner.executor import CellHandle, CellTask, Executor, ExitStatus
from harness.runner.matrix import Cell
from harness.runner.outcomes import finalize
from harness.runner.plan import Plan
from harness.runner.predict import predicted_by, record_skipped
from harness.runner.progress import Progress, QuietProgress
from harness.runner.resume import HeldPrefix, resume_manifest
from harness.runner.store import CellLock
from harness.runner.tracking import NullTracker, Tracker

POLL_S = 0.2
INTERRUPT_GRACE_S = 20.0
"""After Ctrl-C, how long the cell gets to write its `interrupted` summary before SIGKILL."""
KILL_GRACE_S = 10.0
"""Past ``runtime.timeout_s`` the cell stops itself; a cell still running this much later is
killed and the runner writes its `timeout` summary."""


class StopRequest:
    """Counts SIGINT/SIGTERM: the first stops cleanly, the second hard."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, frame: Any) -> None:
        self.count += 1

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopRequest]:
        old = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)


Row = tuple[Cell, dict[str, Any] | None, str]


@dataclass
class RunResult:
    rows: list[Row] = field(default_factory=list)
    """(cell, summary or None, status) for every planned cell, in plan order."""
    interrupted: list[Cell] = field(default_factory=list)
    """The cells that were running when the run was stopped (marked `interrupted`)."""
    stopped: bool = False

    def outcomes(self) -> list[str]:
        return [str((s or {}).get("outcome") or st) for _, s, st in self.rows]


def run_plan(
    plan: Plan,
    executor: Executor,
    progress: Progress | None = None,
    tracker: Tracker | None = None,
    stop: StopRequest | None = None,
    workers: int = 1,
) -> RunResult:
    """Run every `run` cell of the plan, up to ``workers`` at once (in plan order as slots free
    up); stop cleanly on a stop request. Each cell is locked, supervised and finalized exactly
    as ``supervise_cell`` does it alone."""
    progress = progress or QuietProgress()
    run = _Run(plan, executor, progress, tracker or NullTracker(), stop or StopRequest())
    progress.start(plan.count("run"))
    try:
        run.loop(max(1, workers))
    except BaseException:
        for _, sup, _ in run.running.values():  # a bug in the runner: leave no cell behind
            sup.kill()
        raise
    finally:
        progress.close()
    return run.result()


class _Run:
    """The state of one ``run_plan``: cells waiting, running (by worker slot) and finished."""

    def __init__(
        self,
        plan: Plan,
        executor: Executor,
        progress: Progress,
        tracker: Tracker,
        stop: StopRequest,
    ) -> None:
        self.plan, self.executor, self.progress, self.tracker = plan, executor, progress, tracker
        self.stop = stop
        self.queue = deque(enumerate(plan.cells))
        self.running: dict[int, tuple[int, CellSupervisor, CellLock]] = {}
        self.rows: dict[int, Row] = {}
        self.interrupted: list[Cell] = []

    def loop(self, workers: int) -> None:
        self.notes()
        while True:
            self.fill(workers)
            self.notes()
            if not self.running:
                return
            self.step()

    def fill(self, workers: int) -> None:
        """Start queued cells while a worker slot is free; record the ones that do not run."""
        while self.queue and len(self.running) < workers:
            i, p = self.queue.popleft()
            if p.action != "run" or self.stop.count:
                summary = (
                    self.plan.store.read_summary(p.cell.cell_id) if p.action == "done" else None
                )
                self.rows[i] = (p.cell, summary, "not run" if p.action == "run" else p.action)
                continue
            lock = self.plan.store.try_lock(p.cell.cell_id)
            if lock is None:
                self.progress.message(f"{p.cell.cell_id} is running in another runner; skipped")
                self.rows[i] = (p.cell, None, "running")
                continue
            state = self.plan.store.state(p.cell.cell_id)
            if state.outcome and state.mtime_ns != p.mtime_ns:  # finished by another runner
                lock.release()
                self.rows[i] = (p.cell, self.plan.store.read_summary(p.cell.cell_id), "done")
                continue
            if predictor := predicted_by(p.cell, self.plan.store):  # runtime.skip_predicted_oom
                try:
                    summary = record_skipped(p.cell, self.plan, predictor)
                finally:
                    lock.release()
                self.rows[i] = (p.cell, summary, "ran")
                self.progress.cell_end(p.cell, summary)
                continue
            slot = min(set(range(workers)) - set(self.running))
            sup = CellSupervisor(
                p.cell, self.plan, self.executor, self.progress, self.tracker, worker=slot
            )
            try:
                sup.start()
            except BaseException:
                lock.release()
                raise
            self.running[slot] = (i, sup, lock)

    def step(self) -> None:
        """Wait up to POLL_S for any running cell to end, follow all of them, finish the ended."""
        sups = {slot: sup for slot, (_, sup, _) in self.running.items()}
        ended = [(slot, sup.status) for slot, sup in sups.items() if sup.status is not None]
        handles = {id(sup.handle): slot for slot, sup in sups.items() if sup.status is None}
        waiting = [sups[slot].handle for slot in handles.values()]
        if waiting and not ended:
            for handle, status in self.executor.wait_any(waiting, POLL_S):
                ended.append((handles[id(handle)], status))
        now = time.monotonic()
        done = {slot for slot, _ in ended}
        for slot, sup in sups.items():
            if slot not in done:
                sup.follow(self.stop, now)
        self.progress.refresh()
        for slot, status in ended:
            i, sup, lock = self.running.pop(slot)
            try:
                summary = sup.finish(status)
            finally:
                lock.release()
            self.rows[i] = (sup.cell, summary, "ran")
            if sup.interrupted and summary.get("outcome") == "interrupted":
                self.interrupted.append(sup.cell)

    def notes(self) -> None:
        for note in self.executor.take_notes():
            self.progress.message(f"note: {note}")

    def result(self) -> RunResult:
        rows = [self.rows[i] for i in sorted(self.rows)]
        return RunResult(rows, self.interrupted, self.stop.count > 0)


def supervise_cell(
    cell: Cell,
    plan: Plan,
    executor: Executor,
    progress: Progress,
    tracker: Tracker,
    stop: StopRequest,
) -> dict[str, Any]:
    """Start one cell, follow it to its end, and return its summary (the cell's own, or the one
    the runner writes when the cell could not)."""
    sup = CellSupervisor(cell, plan, executor, progress, tracker)
    sup.start()
    while (status := sup.status) is None:
        assert sup.handle is not None
        ended = executor.wait_any([sup.handle], POLL_S)
        if ended:
            status = ended[0][1]
            break
        sup.follow(stop, time.monotonic())
        progress.refresh()
    return sup.finish(status)


class CellSupervisor:
    """One cell from its start to its summary, in steps that a loop over several running cells
    interleaves: ``start``, ``follow`` (metrics, Ctrl-C, the time limit) at each poll, ``finish``.

    ``runtime.timeout_s`` is the cell's own: it stops itself there. KILL_GRACE_S later the runner
    kills it (or, for a handle that ``enforces_deadline``, the executor does, counting from the
    cell's process start). After a stop request the cell gets INTERRUPT_GRACE_S to write its
    `interrupted` summary; a second request kills it at once.
    """

    def __init__(
        self,
        cell: Cell,
        plan: Plan,
        executor: Executor,
        progress: Progress,
        tracker: Tracker,
        worker: int = 0,
    ) -> None:
        self.cell, self.plan, self.executor = cell, plan, executor
        self.progress, self.tracker, self.worker = progress, tracker, worker
        self.handle: CellHandle | None = None
        self.status: ExitStatus | None = None
        """Set at start when the cell could not even be started."""
        self.timed_out = self.interrupted = False
        self.deadline: float | None = None
        self.kill_at: float | None = None

    def start(self) -> None:
        cell, store = self.cell, self.plan.store
        # a cluster job a previous runner submitted and never collected: follow it, don't rerun
        adopt = getattr(self.executor, "adopt", None)
        adopted = adopt(store.cell_dir(cell.cell_id)) if adopt else None
        self.cell_dir = cell_dir = store.cell_dir(cell.cell_id)
        if adopted is None:
            store.prepare(cell.cell_id)
            text = yaml.safe_dump(cell.config, sort_keys=False)
            atomic_write_text(cell_dir / CONFIG_FILE, text)
        self.info = CellInfo(
            cell_id=cell.cell_id,
            matrix=self.plan.matrix.name,
            source=self.plan.matrix.source,
            axes=cell.axes,
            repeat=cell.repeat,
            index=cell.index,
            started_at=now_iso(),
        )
        if adopted is None:
            write_json(cell_dir / CELL_FILE, self.info)
        _safe(self.tracker.on_cell_start, cell.cell_id, to_json(self.info), cell.config)
        self.progress.cell_start(cell, int(cell.config["train"]["max_steps"]))
        runtime = dict(cell.config["runtime"])
        timeout = runtime.get("timeout_s")
        task = CellTask(
            cell.cell_id,
            cell_dir / CONFIG_FILE,
            cell_dir,
            cell_dir / LOG_FILE,
            worker=self.worker,
            runtime=runtime,
            kill_after_s=timeout + KILL_GRACE_S if timeout else None,
        )
        point = resume_manifest(cell_dir)  # kept by prepare: the cell continues from it
        if point:
            steps = f"{point['step']}/{point['steps_planned']}"
            self.progress.message(f"{cell.cell_id}: resuming at step {steps}")
        held = HeldPrefix(cell_dir / METRICS_FILE, point) if point else None
        self.tail = MetricsTail(cell_dir / METRICS_FILE, held)
        self.started = time.monotonic()
        try:
            self.handle = adopted or self.executor.start(task)
        except OSError as exc:  # e.g. the Python or the log file is not there: a failed cell
            reason = exc.strerror or str(exc)
            self.status = ExitStatus(None, reason=f"the cell could not be started: {reason}")
            return
        if timeout and not self.handle.enforces_deadline:
            self.deadline = time.monotonic() + timeout + KILL_GRACE_S

    def follow(self, stop: StopRequest, now: float) -> None:
        """Forward new metrics records; act on a stop request or a deadline passed."""
        for record in self.tail.read_new():
            self.progress.record(self.cell, record)
            _safe(self.tracker.on_record, self.cell.cell_id, record)
        if self.handle is None:
            return
        phase = getattr(self.handle, "phase", None)  # a cluster job: queued, running, done
        if phase is not None and hasattr(self.progress, "cell_phase"):
            self.progress.cell_phase(self.cell, phase())
        if stop.count and not self.interrupted:
            self.interrupted, self.kill_at = True, now + INTERRUPT_GRACE_S
            self.handle.interrupt()
        if self.deadline and now > self.deadline and not (self.timed_out or self.interrupted):
            self.timed_out, self.kill_at = True, now
        if (self.kill_at and now >= self.kill_at) or stop.count > 1:
            self.handle.kill()

    def kill(self) -> None:
        if self.handle is not None:
            self.handle.kill()

    def finish(self, status: ExitStatus) -> dict[str, Any]:
        """The cell's summary (its own, or the runner's), cell.json's end, trackers, display."""
        cell, info = self.cell, self.info
        for record in self.tail.read_new():
            _safe(self.tracker.on_record, cell.cell_id, record)
        if status.reason:
            self.progress.message(f"{cell.cell_id}: {status.reason}")
        wall = time.monotonic() - self.started
        timed_out = self.timed_out or status.timed_out
        summary = finalize(
            cell, self.cell_dir, status, timed_out, self.interrupted, wall, info.started_at
        )
        if hasattr(self.handle, "amend"):  # a cluster job: how the cluster ended it (Slurm)
            summary, info.job = self.handle.amend(summary), self.handle.record()
        info.finished_at, info.runner_wall_s = now_iso(), round(wall, 3)
        write_json(self.cell_dir / CELL_FILE, info)
        _safe(self.tracker.on_cell_end, cell.cell_id, summary)
        self.progress.cell_end(cell, summary)
        return summary


class MetricsTail:
    """Reads the complete lines appended to metrics.jsonl since the last call (of a file kept
    for a resuming cell, only the lines this attempt adds: ``HeldPrefix``)."""

    def __init__(self, path: Path, held: HeldPrefix | None = None) -> None:
        self.path, self.offset, self.held = path, 0, held
        self.inode: int | None = None

    def read_new(self) -> list[dict[str, Any]]:
        if self.held is not None:
            offset = self.held.offset(self.path)
            if offset is None:
                return []
            self.offset, self.held = offset, None
        try:
            with open(self.path, "rb") as fh:
                inode = os.fstat(fh.fileno()).st_ino
                if self.inode is not None and inode != self.inode:
                    self.offset = 0  # a new file: an OOM back-off attempt starts afresh
                self.inode = inode
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        out = []
        for line in chunk[:end].splitlines():
            with contextlib.suppress(SchemaError):
                out.append(parse_line(line, RECORD_KINDS, str(self.path)))
        return out


def _safe(fn: Any, *args: Any) -> None:
    """Trackers never fail a cell: a tracker's failure is a warning on stderr, beside the other
    warnings (stdout is the summary table's)."""
    try:
        fn(*args)
    except Exception as exc:  # a tracker's own bug or outage: never the cell's ending
        print(f"warning: tracker {fn.__qualname__} failed: {exc}", file=sys.stderr)
