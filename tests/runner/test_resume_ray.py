"""The resume test of tests/runner/test_resume_kill.py on ``--executor ray`` (a real local Ray
instance, one per module): the cell SIGKILLed inside its Ray worker at a random step, then
``run_matrix.py --rerun failed`` on Ray, continues from its resume point and ends bit-identical
to the uninterrupted local run."""

from __future__ import annotations

import json

import pytest

from harness.contracts import schema
from tests.test_resume import assert_same_result

from .test_ray import cluster  # noqa: F401 - the module's Ray instance (a fixture)
from .test_resume_kill import STEPS, kill_at_random_step, reference, run_matrix, the_cell  # noqa: F401


@pytest.mark.slow  # a Ray instance and three real runs of a 40-step cell
def test_a_cell_killed_on_ray_resumes_bit_identical(cluster, reference, tmp_path):  # noqa: F811
    matrix, ref = reference
    store = tmp_path / "runs"
    ray_args = ("--executor", "ray", "--address", cluster)
    _, at = kill_at_random_step(matrix, store, "cell", *ray_args)
    cell_dir = the_cell(store)
    first = json.loads((cell_dir / schema.SUMMARY_FILE).read_text())
    assert first["outcome"] == "failed" and "SIGKILL" in first["error"]["message"]
    again = run_matrix(matrix, store, "--rerun", "failed", *ray_args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming at step {at}/{STEPS}" in again.stderr
    summary = json.loads((cell_dir / schema.SUMMARY_FILE).read_text())
    assert summary["outcome"] == "completed" and summary["train"]["resumed_at"] == at
    assert_same_result(ref, cell_dir)
