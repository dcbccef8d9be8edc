"""The mirror process on its own: events on stdin -> offline runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.wandb_access.env import wandb_env

from .conftest import REPO, read_offline_runs


@pytest.mark.slow
def test_a_cell_whose_end_never_comes_is_finished_as_not_finished(tmp_path, home):
    """The runner died mid-cell (end of input): the run is closed, marked, exit code 1."""
    root = tmp_path / "wandb"
    info = {"matrix": "m", "axes": {"seed": 3}, "repeat": 0, "source": "m.yaml"}
    events = [
        {"event": "start", "cell_id": "c1", "info": info, "config": {"seed": 3}, "cell_dir": "."},
        {"event": "record", "cell_id": "c1", "record": {"kind": "train", "step": 1, "loss": 2}},
        {"event": "record", "cell_id": "nope", "record": {"kind": "train", "step": 1}},
    ]
    text = "".join(json.dumps(e) + "\n" for e in events) + '{"event": "rec'  # cut short
    env = {**os.environ, **wandb_env(root), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "harness.wandb_access.mirror", "--project", "p", "--tag", "t"],
        input=text.encode(),
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout == b""  # no warning for the runner
    assert b"ignored a malformed event line" in done.stderr
    (run,) = read_offline_runs(root, tmp_path).values()
    assert (run.name, run.group, run.config["seed"]) == ("seed=3", "m", 3)
    assert run.history == [{**run.history[0], "step": 1, "train/loss": 2}]
    assert run.summary["outcome"] == "not finished" and run.exit_code == 1
    assert set(run.tags) == {"t", "not finished"}
