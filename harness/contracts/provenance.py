"""Where a result came from: code version, packages, interpreter, torch/CUDA, device, host.

``collect_provenance()`` is called by the cell (recorded in ``summary.json``'s ``provenance``)
and by the runner when it has to write a summary itself (a crashed cell).
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.contracts.paths import REPO_ROOT

PACKAGES = ("torch", "transformers", "peft", "safetensors", "numpy", "pillow", "wandb", "pyyaml")
"""Distributions whose versions are recorded (absent ones are recorded as None)."""


def collect_provenance() -> dict[str, Any]:
    """A plain dict: git_commit, git_dirty, python, torch, cuda, transformers, peft, packages,
    device_name, hostname, platform.

    Torch-free: torch's version comes from package metadata and cuda/device_name are None here;
    the cell and ``benchmark`` add them with ``harness.cell.device.torch_info()``.
    """
    packages = package_versions()
    commit, dirty = git_state()
    out: dict[str, Any] = {
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "torch": packages.get("torch"),
        "cuda": None,
        "transformers": packages.get("transformers"),
        "peft": packages.get("peft"),
        "packages": packages,
        "device_name": None,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
    }
    return out


@functools.cache
def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.cache
def git_state(root: Path = REPO_ROOT) -> tuple[str | None, bool | None]:
    """(commit sha, has uncommitted changes); (None, None) outside a git checkout."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return (commit.strip() if commit else None), (None if status is None else bool(status.strip()))


def cpu_name() -> str | None:
    """The CPU model from /proc/cpuinfo (Linux), with the number of usable cores."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cores = len(os.sched_getaffinity(0))
                    return f"{line.split(':', 1)[1].strip()} ({cores} cores)"
    except (OSError, AttributeError):
        pass
    return None
