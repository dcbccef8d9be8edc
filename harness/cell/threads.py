"""CPU threads of a cell (``runtime.threads``), robust to a machine shared with other work.

``auto`` (the default) uses the cores this process may run on (``os.sched_getaffinity``: a
``taskset``, a container's cpuset or a Slurm allocation, not the machine's total) and makes idle
OpenMP threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``). torch's CPU ops run on an
OpenMP pool whose threads, by default, spin at every barrier waiting for the slowest one; when
another process holds one of the cores, the thread that shares it is descheduled and its partners
burn their time slices spinning, which can slow training by an order of magnitude. A passive
pool yields the core instead. The variable must be in the environment before torch loads its
OpenMP runtime, so the cell applies it before its first ``import torch`` (the runner imports no
torch and passes nothing). A value already in the environment is left as the user set it.

An integer pins the thread count (and applies the same wait policy); ``null`` leaves torch's own
defaults untouched (what stores written before ``auto`` existed ran with).
"""

from __future__ import annotations

import os
import sys

WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE"}
"""Environment the cell sets (unless already set) before torch starts its thread pool."""


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def resolve_threads(setting: int | str | None) -> int | None:
    """The thread count for ``runtime.threads``: ``auto`` -> ``$OMP_NUM_THREADS`` when set (the
    runner's share for one of N parallel workers, or Ray's ``num_cpus``), else the available
    cores; an integer as given; None -> None (torch's default)."""
    if setting == "auto":
        share = os.environ.get("OMP_NUM_THREADS", "")
        if share.isdigit() and int(share) > 0:
            return min(int(share), available_cores())
        return available_cores()
    return setting if isinstance(setting, int) else None


def prepare_environment(setting: int | str | None) -> bool:
    """Set ``WAIT_POLICY`` in ``os.environ`` for ``setting`` (not for None) before torch is
    imported. Returns False, changing nothing, when torch is already loaded (a cell run inside
    another Python process): the policy could no longer apply, and the host's child processes
    keep their environment."""
    if "torch" in sys.modules:
        return False
    if setting is not None:
        for name, value in WAIT_POLICY.items():
            os.environ.setdefault(name, value)
    return True
