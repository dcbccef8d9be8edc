"""--executor ray when machines go away, on a real three-node Ray cluster on this machine (Ray's
own ``cluster_utils.Cluster``: a head without CPUs and two one-CPU nodes, so each of two cells
runs on its own node): the cell whose node is removed mid-run is recorded `interrupted` (not
lost, not hung) while the other completes, and resume reruns only it; a cluster that disappears
entirely ends the run with one line and exit 1, and the store resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import FAKE_COMMAND, REPO, write_matrix
from .test_cli import cell_dirs, outcomes, starts, wait_for

pytestmark = pytest.mark.slow
cluster_utils = pytest.importorskip("ray.cluster_utils")
STORE_MB = 80 * 2**20


@pytest.fixture
def nodes(monkeypatch):
    """(cluster, first worker node); the cluster's processes import this checkout."""
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get(
        "PYTHONPATH")])))  # fmt: skip
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    head = {"num_cpus": 0, "include_dashboard": False, "object_store_memory": STORE_MB}
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args=head)
    first = cluster.add_node(num_cpus=1, object_store_memory=STORE_MB)
    cluster.add_node(num_cpus=1, object_store_memory=STORE_MB)
    cluster.wait_for_nodes()
    yield cluster, first
    cluster.shutdown()


def ray_cli(matrix, store, address, *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, str(REPO / "run_matrix.py"), str(matrix), "--store", str(store),
            "--cell-command", FAKE_COMMAND, "--executor", "ray", "--address", address, *args]  # fmt: skip
    return subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def both_running(store) -> bool:
    if not (store / "fake").exists():
        return False
    return sum((d / "metrics.jsonl").exists() for d in cell_dirs(store)) == 2


def test_a_cell_whose_node_dies_is_interrupted_and_reruns_on_resume(nodes, tmp_path):
    cluster, first = nodes
    matrix = write_matrix(tmp_path / "m.yaml", ["a", "b"], steps=150, step_ms=100)
    store = tmp_path / "runs"
    proc = ray_cli(matrix, store, cluster.address)
    wait_for(lambda: both_running(store), timeout=120)
    cluster.remove_node(first)  # its raylet and workers die, the cell with them
    _, err = proc.communicate(timeout=180)  # recorded, not hung
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    summaries = [json.loads((d / "summary.json").read_text()) for d in cell_dirs(store)]
    assert sorted(s["outcome"] for s in summaries) == ["completed", "interrupted"]
    (lost,) = [s for s in summaries if s["outcome"] == "interrupted"]
    assert lost["error"]["type"] == "node_lost" and "node" in lost["error"]["message"]
    assert lost["written_by"] == "runner" and lost["train"]["steps"] >= 1
    resumed = ray_cli(matrix, store, cluster.address, "--quiet")
    _, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err
    assert outcomes(store) == ["completed", "completed"]
    assert starts(store) == 2  # the completed cell did not run again (the lost attempt is .1)


def test_a_cluster_that_disappears_ends_the_run_in_one_line_and_the_store_resumes(nodes, tmp_path):
    cluster, _ = nodes
    # two cells run (one per node), the third waits in Ray's queue
    matrix = write_matrix(tmp_path / "m.yaml", ["a", "b", "c"], steps=150, step_ms=100)
    store = tmp_path / "runs"
    address = cluster.address
    proc = ray_cli(matrix, store, address)
    wait_for(lambda: both_running(store), timeout=120)
    cluster.shutdown()
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and f"the Ray cluster at {address} is gone" in lines[0]
    assert "rerun" in lines[0]
    plan = subprocess.run(
        [sys.executable, str(REPO / "run_matrix.py"), str(matrix), "--store", str(store),
         "--dry-run", "--json"], capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert [c["action"] for c in json.loads(plan.stdout)["cells"]] == ["run"] * 3
    assert set(outcomes(store)) <= {"interrupted"}  # the recorded ones; none `failed`
