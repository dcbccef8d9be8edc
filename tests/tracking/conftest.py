"""Helpers for the W&B tests: a sandboxed HOME, the CLI in a child process, and offline runs read
back with wandb's own reader (``wandb leet inspect --json``: the records of a ``.wandb`` file).

No test needs the network or calls ``wandb sync``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.wandb_access.env import WANDB_DIR_VARS

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "experiments" / "smoke.yaml"
FAKE_CELL = REPO / "tests" / "runner" / "fake_cell.py"
WANDB_VARS = (*WANDB_DIR_VARS, "WANDB_MODE", "WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY")

# the runner's parent process must never import wandb: checked after every CLI run here
CLI = (
    "import sys\n"
    "from harness.runner.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "assert 'wandb' not in sys.modules, 'the runner process imported wandb'\n"
    "sys.exit(rc)\n"
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """HOME inside tmp_path and no W&B variables: every W&B directory must follow the store."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    for var in WANDB_VARS:
        monkeypatch.delenv(var, raising=False)
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def smoke_matrix(tmp_path: Path, **tracking: Any) -> Path:
    """experiments/smoke.yaml with its data cached in tmp_path and a `tracking:` section."""
    raw = yaml.safe_load(SMOKE.read_text())
    raw["base"]["data"]["cache_dir"] = str(tmp_path / "data")
    if tracking:
        raw["tracking"] = tracking
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line.lower()]


@dataclass
class OfflineRun:
    """What an offline run's ``.wandb`` file holds."""

    name: str = ""
    group: str = ""
    project: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    artifacts: list[dict[str, Any]] = field(default_factory=list)


def read_offline_runs(wandb_root: Path, tmp_path: Path) -> dict[str, OfflineRun]:
    """cell id -> its offline run, for every run under ``wandb_root`` (a WANDB_DIR)."""
    env_root = tmp_path / "reader"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(env_root)}
    env |= {var: str(env_root / var.lower()) for var in WANDB_DIR_VARS}
    runs: dict[str, OfflineRun] = {}
    for path in sorted(wandb_root.glob("wandb/offline-run-*/run-*.wandb")):
        done = subprocess.run(
            [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        run = OfflineRun()
        for line in done.stdout.splitlines():
            _apply(run, json.loads(line))
        runs[run.config["cell_id"]] = run
    return runs


def _apply(run: OfflineRun, record: dict[str, Any]) -> None:
    kind = record["type"]
    body = record.get(kind) or {}
    if kind == "run":
        run.config.update((body.get("config") or {}).get("update") or {})
        run.name = body.get("display_name", run.name)
        run.group = body.get("run_group", run.group)
        run.project = body.get("project", run.project)
        run.tags = body.get("tags", run.tags)
    elif kind == "history":
        run.history.append(body["item"])
    elif kind == "summary":
        run.summary.update(body.get("update") or {})
    elif kind == "exit":
        run.exit_code = body.get("exit_code", 0)
    elif kind == "artifact":
        run.artifacts.append(body)
