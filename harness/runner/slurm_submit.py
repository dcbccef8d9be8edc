"""``run_matrix.py --executor slurm --detach``: submit every pending cell's job and exit.

Each cell is prepared exactly as the runner prepares it (config.yaml, cell.json, the job id in
cell.json once sbatch answers) under its lock, which is released at once: the jobs run without
a runner. A later plain run of the same command finds every recorded job (``adopt``): it
follows the ones still queued or running, collects the ended ones, and submits only the cells
whose job is gone. Cells whose job ended before this call are collected here.
"""

from __future__ import annotations

from rich.console import Console

from harness.contracts.errors import EXIT_OK
from harness.runner.loop import CellSupervisor
from harness.runner.plan import Plan
from harness.runner.progress import Progress
from harness.runner.slurm_executor import SlurmExecutor
from harness.runner.tracking import NullTracker


def submit_detached(plan: Plan, executor: SlurmExecutor, progress: Progress, err: Console) -> int:
    """Submit (or find) a job for each pending cell; print what was done; exit status 0."""
    sups: list[CellSupervisor] = []
    busy = 0
    for p in plan.cells:
        if p.action != "run":
            continue
        lock = plan.store.try_lock(p.cell.cell_id)
        if lock is None:
            busy += 1
            continue
        try:
            sup = CellSupervisor(p.cell, plan, executor, progress, NullTracker())
            sup.start()
            executor.flush()  # the job id is in cell.json before the lock goes
            status = sup.handle.poll() if sup.handle is not None else sup.status
            if status is not None:  # ended while no runner was there, or refused by sbatch
                sup.finish(status)
            else:
                sups.append(sup)
        finally:
            lock.release()
    for note in executor.take_notes():
        progress.message(f"note: {note}")
    progress.close()
    ids = [getattr(s.handle, "job_id", None) for s in sups]
    jobs = ", ".join(f"{s.cell.cell_id}={j}" for s, j in zip(sups, ids, strict=True) if j)
    err.print(
        f"detached: {len(sups)} cell job(s) queued or running ({jobs or 'none'})"
        + (f"; {busy} cell(s) locked by another runner" if busy else "")
        + ". Collect them later with the same command without --detach.",
        markup=False,
    )
    return EXIT_OK
