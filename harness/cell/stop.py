"""How a signal stops a cell: ``Interrupted`` at once, or, while the training loop says it can
write a resume point, at the end of the current step with the point written first.

Slurm sends SIGTERM at a job's time limit, at preemption and at ``scancel`` (then SIGKILL after
its KillWait, 30 s by default); the runner sends SIGINT on Ctrl-C. With
``checkpoint.resume_every`` on, a cell stopped that way would lose every step since its last
periodic point; instead the first signal is noted and the loop finishes its step, writes a point
and raises ``Interrupted`` (the cell then continues from that very step when run again). A second
signal raises at once, so a step that hangs stays stoppable.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived while the cell was running."""


class Stop:
    """The cell's signal state: ``handler`` is installed for SIGINT and SIGTERM."""

    def __init__(self) -> None:
        self.deferring = False
        self.pending: str | None = None

    def handler(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.deferring and self.pending is None:
            self.pending = name  # the training loop stops after this step, with a point
            return
        raise Interrupted(f"stopped by {name}")

    @contextmanager
    def deferred(self):
        """Signals in the block are noted, not raised (the first one; a second raises)."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False

    def raise_pending(self, step: int) -> None:
        if self.pending is not None:
            raise Interrupted(f"stopped by {self.pending} after step {step}, resume point written")


STOP = Stop()
"""One per process: a cell process runs one cell."""
