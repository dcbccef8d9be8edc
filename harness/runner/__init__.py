"""The runner: the parent-process side of a matrix run, free of torch.

It reads and expands a matrix (``matrix``), plans it against the run store (``plan``,
``store``), starts each cell in its own process (``executor``: locally, up to N at once, warm
or cold; ``ray_executor``: as Ray tasks), supervises it (``loop``),
records outcomes the cell could not (``outcomes``), shows progress (``progress``) and mirrors
to trackers (``tracking``). ``cli`` is ``run_matrix.py``. Nothing here imports torch: the cell
side (``harness.cell`` and what it uses) runs in the child process.
"""

from harness.contracts.outcomes import RERUN_CHOICES
from harness.runner.executor import LocalProcessExecutor
from harness.runner.loop import RunResult, StopRequest, run_plan
from harness.runner.matrix import Cell, Matrix, build_matrix, load_matrix, select
from harness.runner.plan import Plan, PlannedCell, make_plan
from harness.runner.store import Store, StoreError

__all__ = [
    "RERUN_CHOICES",
    "Cell",
    "LocalProcessExecutor",
    "Matrix",
    "Plan",
    "PlannedCell",
    "RunResult",
    "StopRequest",
    "Store",
    "StoreError",
    "build_matrix",
    "load_matrix",
    "make_plan",
    "run_plan",
    "select",
]
