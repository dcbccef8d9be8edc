"""Memory budgets that really bind, peak memory per phase, and recognising an allocator OOM."""

from __future__ import annotations

import resource

import torch

from harness.contracts.schema import PhasePeak

GB = 1024**3


def status_kb(field: str) -> int | None:
    """A ``/proc/self/status`` field in kB (``VmRSS``, ``VmHWM``); None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_bytes() -> int | None:
    kb = status_kb("VmRSS")
    return None if kb is None else kb * 1024


def apply_budget(budget_gb: float | None, device: torch.device) -> int | None:
    """Enforce the budget for this process; returns it in bytes (None when unset).

    CUDA: ``torch.cuda.set_per_process_memory_fraction`` (the caching allocator raises
    ``torch.OutOfMemoryError`` beyond it). CPU: ``RLIMIT_DATA`` on the whole process (heap and
    anonymous mappings), so malloc itself fails and torch raises "can't allocate memory".
    """
    if budget_gb is None:
        return None
    budget = int(budget_gb * GB)
    if device.type != "cuda" and (rss_bytes() or 0) >= budget:
        raise MemoryError(
            f"the budget ({budget / GB:.2f} GB) is below what the process already uses "
            f"({(rss_bytes() or 0) / GB:.2f} GB) before loading anything"
        )
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, budget / total), device)
    else:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        limit = budget if hard == resource.RLIM_INFINITY else min(budget, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    return budget


def lift_budget() -> None:
    """Raise the CPU soft limit back to the hard limit, so an OOM can still be written down."""
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))


def is_oom(exc: BaseException) -> bool:
    """True for an allocator out-of-memory on any device."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )


def oom_phase(exc: BaseException, phase: str) -> str:
    """Where an OOM struck: ``eval`` when the failing call ran in ``evaluate`` (validation during
    training too, whose fix is a smaller eval batch), else the cell's ``phase``."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "evaluate" and code.co_filename.endswith("evaluate.py"):
            return "eval"
        tb = tb.tb_next
    return phase


def release_after_oom(exc: BaseException, meter: PeakMeter | None) -> None:
    """After a CUDA OOM, give the allocator's cached blocks back (the next attempt, in a fresh
    process, starts clean anyway; this frees them before the summary is written)."""
    if meter is not None and meter.kind == "cuda" and is_oom(exc):
        torch.cuda.empty_cache()


class PeakMeter:
    """Peak memory of one phase. CUDA: max allocated/reserved reset at phase start. CPU: the
    process's peak RSS (VmHWM) reset at phase start through /proc/self/clear_refs when the kernel
    allows it, else the process-lifetime peak (ru_maxrss)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = "cuda" if device.type == "cuda" else "cpu_rss"

    def start(self) -> None:
        if self.kind == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
        except OSError:
            pass

    def peak(self) -> PhasePeak:
        """The peak since ``start()``."""
        if self.kind == "cuda":
            torch.cuda.synchronize(self.device)
            return PhasePeak(
                peak_bytes=int(torch.cuda.max_memory_allocated(self.device)),
                reserved_bytes=int(torch.cuda.max_memory_reserved(self.device)),
            )
        hwm = status_kb("VmHWM")
        if hwm is None:
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return PhasePeak(peak_bytes=hwm * 1024)

    def in_use(self) -> int | None:
        if self.kind == "cuda":
            return int(torch.cuda.memory_allocated(self.device))
        return rss_bytes()
