"""How N local workers share this machine: CPU threads and GPUs per worker slot.

With ``--workers N`` up to N cells run at once, each in a numbered slot (0..N-1). A slot's cell
gets, through its environment only (never through its config, which is its identity):

- ``OMP_NUM_THREADS``: this machine's usable cores (``os.sched_getaffinity``) divided evenly
  between the slots (at least 1), which is torch's default thread count in the cell; an explicit
  ``runtime.threads`` in the cell's config still wins. Left alone when the user's environment
  already sets it, or with one worker.
- ``CUDA_VISIBLE_DEVICES``: with two or more GPUs visible and N > 1, slot k sees GPU k mod G
  (so N <= G gives each cell its own GPU). With one GPU or none it is left alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess

THREADS_ENV = "OMP_NUM_THREADS"
GPUS_ENV = "CUDA_VISIBLE_DEVICES"


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def visible_gpus(env: dict[str, str] | None = None) -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else ``nvidia-smi -L``
    (no GPU, no driver or no ``nvidia-smi``: none). Never imports torch or initialises CUDA."""
    env = os.environ if env is None else env
    if GPUS_ENV in env:
        return [g.strip() for g in env[GPUS_ENV].split(",") if g.strip() and g.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        done = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip().isdigit()]


def slot_envs(
    workers: int, env: dict[str, str] | None = None, cores: int | None = None
) -> list[dict[str, str]]:
    """The environment additions of each worker slot (see the module docstring)."""
    env = dict(os.environ if env is None else env)
    if workers <= 1:
        return [{}]
    cores = usable_cores() if cores is None else cores
    threads = str(max(1, cores // workers))
    gpus = visible_gpus(env)
    slots: list[dict[str, str]] = []
    for k in range(workers):
        extra: dict[str, str] = {}
        if THREADS_ENV not in env:
            extra[THREADS_ENV] = threads
        if len(gpus) >= 2:
            extra[GPUS_ENV] = gpus[k % len(gpus)]
        slots.append(extra)
    return slots


def describe(slots: list[dict[str, str]]) -> str:
    """One line for the user: what each slot gets."""
    if len(slots) <= 1:
        return "1 worker"
    parts = []
    threads = {s.get(THREADS_ENV) for s in slots}
    if threads != {None}:
        n = threads.pop()
        parts.append(f"{n} thread{'' if n == '1' else 's'} each")
    gpus = [s.get(GPUS_ENV) for s in slots]
    if any(g is not None for g in gpus):
        parts.append("GPU " + ", ".join(f"{g}" for g in gpus))
    return f"{len(slots)} workers" + (f" ({'; '.join(parts)})" if parts else "")


def auto_workers(
    configs: list[dict], cores: int | None = None, gpus: list[str] | None = None
) -> int:
    """``workers: auto`` for the cells about to run (resolved configs): one worker per visible
    GPU when the cells use CUDA (``runtime.device: cuda``, or ``auto`` with a GPU visible); on
    CPU, as many as the cores hold cells of ``runtime.threads`` threads when every cell pins an
    integer (``threads: 1`` on 2 cores: 2 workers), else 1 (``auto``/null threads already use
    every core); never more than the cells."""
    if not configs:
        return 1
    gpus = visible_gpus() if gpus is None else gpus
    devices = {c["runtime"]["device"] for c in configs}
    if "cuda" in devices or ("auto" in devices and gpus):
        return max(1, min(len(gpus), len(configs)))
    threads = [c["runtime"]["threads"] for c in configs]
    if not all(type(t) is int and t > 0 for t in threads):
        return 1
    cores = usable_cores() if cores is None else cores
    return max(1, min(cores // max(threads), len(configs)))
