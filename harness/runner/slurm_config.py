"""The matrix file's ``slurm:`` section: what every cell's Slurm job asks for.

    executor: slurm                 # or --executor slurm
    slurm:
      partition: gpu
      account: my-lab
      time_limit: "2:00:00"         # sbatch --time (minutes, MM:SS, H:MM:SS, D-HH:MM:SS)
      cpus_per_task: 4
      mem_gb: 32
      gpus_per_cell: 1
      array_parallelism: 8          # at most this many of the matrix's jobs at once
      sbatch_flags: ["--qos=normal", "--constraint=a100"]

None of it is part of a cell's config or id: the same matrix run locally, on Ray or on Slurm
gives the same cells and results.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from harness.contracts.keys import check_section

EXECUTORS: tuple[str, ...] = ("local", "ray", "slurm")
_TIME_RE = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.,-]+$")
_FLAG_RE = re.compile(r"^--[a-z][a-z0-9-]*(=.*)?$")
OWNED_FLAGS = ("--array", "--output", "--error", "--open-mode", "--wrap", "--parsable")
"""sbatch flags the executor sets itself; ``sbatch_flags`` cannot change them."""


@dataclass(frozen=True)
class SlurmConfig:
    """The ``slurm:`` section (every key optional; unset: the cluster's default)."""

    partition: str | None = None
    """sbatch --partition."""
    account: str | None = None
    """sbatch --account (the allocation the jobs are charged to)."""
    time_limit: str = "1:00:00"
    """sbatch --time of each cell's job; past it Slurm ends the job and the cell is `timeout`."""
    cpus_per_task: int | None = None
    """sbatch --cpus-per-task; unset: the cell's `runtime.threads` (1 when that is unset)."""
    mem_gb: float | None = None
    """sbatch --mem in GB per cell; past it Slurm kills the job (OUT_OF_MEMORY, a `failed` cell,
    never the cell's own measured `oom`)."""
    gpus_per_cell: int | None = None
    """sbatch --gpus-per-node; unset: 1 for a cell with `runtime.device: cuda`, else 0."""
    array_parallelism: int = 64
    """The cells submitted together go as one job array, at most this many running at once."""
    sbatch_flags: tuple[str, ...] = ()
    """Extra sbatch flags, each `--name=value` or `--name` (e.g. `--qos=high`)."""
    poll_s: float = 1.0
    """How often the runner asks Slurm about its jobs (one squeue-like call for all)."""

    def sbatch_extra(self) -> dict[str, Any]:
        """``sbatch_flags`` as submitit's ``additional_parameters`` (name -> value)."""
        out: dict[str, Any] = {}
        for flag in self.sbatch_flags:
            name, sep, value = flag[2:].partition("=")
            out[name.replace("-", "_")] = value if sep else True
        return out


def parse_slurm(raw: Any, errors: list[str]) -> SlurmConfig:
    """Validate a ``slurm:`` mapping; one line per problem in ``errors``."""
    if raw is None:
        return SlurmConfig()
    values = check_section(SlurmConfig, raw, "slurm", errors)
    for key in list(values):
        problem = _value_problem(key, values[key])
        if problem:
            errors.append(f"`slurm.{key}`: {problem}")
            del values[key]
    if "sbatch_flags" in values:
        values["sbatch_flags"] = tuple(values["sbatch_flags"])
    return SlurmConfig(**values)


def parse_executor(raw: Any, errors: list[str]) -> str:
    """The ``executor:`` key (``--executor`` wins)."""
    if raw is None:
        return "local"
    if raw not in EXECUTORS:
        errors.append(f"`executor`: {raw!r} is not one of {', '.join(EXECUTORS)}")
        return "local"
    return str(raw)


def _value_problem(key: str, value: Any) -> str | None:
    if key in ("partition", "account") and not _NAME_RE.match(value):
        return f"{value!r} is not a Slurm name (letters, digits, - _ . ,)"
    if key == "time_limit" and not _TIME_RE.match(str(value)):
        return f"{value!r} is not an sbatch --time (e.g. 30, 1:00:00, 2-00:00:00)"
    if key in ("cpus_per_task", "array_parallelism") and value < 1:
        return f"expected an integer >= 1, got {value!r}"
    if key == "gpus_per_cell" and value < 0:
        return f"expected an integer >= 0, got {value!r}"
    if key in ("mem_gb", "poll_s") and value <= 0:
        return f"expected a number > 0, got {value!r}"
    if key == "sbatch_flags":
        for flag in value:
            if not _FLAG_RE.match(flag):
                return f"{flag!r} is not `--name=value` or `--name` (e.g. --qos=high)"
            if flag.split("=", 1)[0] in OWNED_FLAGS:
                return f"{flag!r}: the executor sets {flag.split('=', 1)[0]} itself"
    return None


def describe(config: SlurmConfig) -> str:
    """One line for the user: what each job asks for."""
    parts = [f"--time={config.time_limit}"]
    for key, flag in (("partition", "--partition"), ("account", "--account")):
        if getattr(config, key):
            parts.append(f"{flag}={getattr(config, key)}")
    if config.mem_gb:
        parts.append(f"--mem={config.mem_gb:g}G")
    return "Slurm jobs: " + shlex.join([*parts, *config.sbatch_flags])
