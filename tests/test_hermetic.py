"""The suite is hermetic: what the caller's shell exported changes nothing (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPORTED = {
    "WANDB_MODE": "offline",
    "WANDB_PROJECT": "x",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "KMP_AFFINITY": "compact",
    "GOMP_SPINCOUNT": "0",
    "HF_HUB_OFFLINE": "0",
    "RAY_ADDRESS": "ray://nowhere:10001",
    "FORCE_COLOR": "1",
    "NO_COLOR": "1",
}
"""What a user's shell profile may export (air-gapped cluster, thread pinning, a Ray cluster,
colour settings)."""


def _child_env() -> dict[str, str]:
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout)


def test_a_child_process_gets_the_hermetic_environment(tmp_path_factory):
    env = _child_env()
    assert env["WANDB_MODE"] == "disabled" and env["HF_HUB_OFFLINE"] == "1"
    assert env["CUDA_VISIBLE_DEVICES"] == ""  # not a gpu test
    assert not {k for k in env if k.startswith(("OMP_", "MKL_", "KMP_", "GOMP_"))}
    assert not {"WANDB_PROJECT", "RAY_ADDRESS", "FORCE_COLOR", "NO_COLOR"} & set(env)
    for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "HF_HOME", "MPLCONFIGDIR"):
        assert Path(env[var]).is_relative_to(tmp_path_factory.getbasetemp())


def test_exported_variables_change_nothing(tmp_path):
    """A pytest run with the variables exported: the thread test (`auto` is capped by
    $OMP_NUM_THREADS) and the child-environment test above still pass."""
    env = {**os.environ, **EXPORTED}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'inner'}",
            "tests/test_threads.py",
            "tests/test_hermetic.py::test_a_child_process_gets_the_hermetic_environment",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "10 passed" in done.stdout.splitlines()[-1]
