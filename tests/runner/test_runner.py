"""The runner with a fake cell: outcomes, resume, reruns, locks, store layout."""

from __future__ import annotations

import json

from harness.runner import make_plan, run_plan
from harness.runner.executor import LocalProcessExecutor
from harness.runner.matrix import load_matrix
from harness.runner.store import Store

from .conftest import write_matrix


def run(tmp_path, fake_command, behaviours, rerun=(), **kw):
    matrix = load_matrix(write_matrix(tmp_path / "m.yaml", behaviours, **kw))
    store = Store(tmp_path / "runs", matrix.name)
    plan = make_plan(matrix, matrix.cells, store, set(rerun))
    result = run_plan(plan, LocalProcessExecutor(command=fake_command))
    return plan, result, {c.axes["data.question"]: s for c, s, _ in result.rows}


def test_every_cell_ends_with_one_typed_outcome(tmp_path, fake_command, monkeypatch):
    monkeypatch.setattr("harness.runner.loop.KILL_GRACE_S", 0.5)
    behaviours = ["ok", "raise", "selfkill", "exit0", "hang_ignore_term", "nan"]
    _, _result, by = run(tmp_path, fake_command, behaviours, timeout_s=1.5)
    assert {b: s["outcome"] for b, s in by.items()} == {
        "ok": "completed",
        "raise": "failed",
        "selfkill": "failed",
        "exit0": "failed",
        "hang_ignore_term": "timeout",
        "nan": "diverged",
    }
    err = by["raise"]["error"]
    assert (err["type"], err["message"], err["phase"]) == (
        "RuntimeError",
        "boom from the fake cell",
        "train",
    )
    assert "Traceback" in err["log_tail"] and "fake cell" in err["log_tail"]
    assert (
        by["selfkill"]["error"]["type"] == "signal"
        and "SIGKILL" in by["selfkill"]["error"]["message"]
    )
    assert by["hang_ignore_term"]["train"]["steps"] == 3  # what the cell recorded is kept
    # summaries the runner wrote: the budget from the config, why training stopped where known
    for b, reason in {"raise": "error", "selfkill": "error", "hang_ignore_term": "timeout"}.items():
        train = by[b]["train"]
        assert by[b]["written_by"] == "runner" and train["stop_reason"] == reason
        assert train["steps_planned"] == 3 and train["samples_planned"] == 3 * 16
    for b, s in by.items():
        info = json.loads((tmp_path / "runs" / "fake" / s["cell_id"] / "cell.json").read_text())
        assert info["axes"] == {"data.question": b} and info["matrix"] == "fake"
        assert info["repeat"] == 0 and info["runner_wall_s"] > 0
        assert s["provenance"]


def test_sigkill_under_a_memory_budget_is_a_kill_not_a_claimed_oom(tmp_path, fake_command):
    """RLIMIT_DATA makes allocations fail and sends no signal: a SIGKILL without evidence is a
    kill (from outside, or the kernel's OOM killer), and the budget is named as a possible cause."""
    _, _, by = run(tmp_path, fake_command, ["selfkill", "ok"], memory_budget_gb=0.5)
    killed = by["selfkill"]
    assert killed["outcome"] == "failed" and killed["oom"] is None
    assert killed["error"]["type"] == "signal"
    message = killed["error"]["message"]
    assert "killed by SIGKILL" in message and "memory_budget_gb=0.5" in message
    assert "possible cause" in message
    assert by["ok"]["outcome"] == "completed"


def test_rerun_skips_done_cells_and_reruns_selected_outcomes(tmp_path, fake_command):
    plan, _, _ = run(tmp_path, fake_command, ["ok", "raise"])
    ids = {p.cell.axes["data.question"]: p.cell.cell_id for p in plan.cells}
    plan2, result2, _ = run(tmp_path, fake_command, ["raise", "ok"])  # reordered file
    assert [p.action for p in plan2.cells] == ["done", "done"]
    assert [st for _, _, st in result2.rows] == ["done", "done"]
    plan3, _, _ = run(tmp_path, fake_command, ["ok", "raise"], rerun={"failed"})
    assert [p.action for p in plan3.cells] == ["done", "run"]
    failed_dir = tmp_path / "runs" / "fake" / ids["raise"]
    assert (failed_dir / "cell.log.1").exists() and (failed_dir / "summary.json.1").exists()
    assert json.loads((failed_dir / "summary.json").read_text())["outcome"] == "failed"


def test_a_locked_cell_is_left_to_its_runner(tmp_path, fake_command):
    matrix = load_matrix(write_matrix(tmp_path / "m.yaml", ["ok", "nan"]))
    store = Store(tmp_path / "runs", matrix.name)
    store.ensure_writable()
    lock = store.try_lock(matrix.cells[0].cell_id)
    assert lock is not None and store.try_lock(matrix.cells[0].cell_id) is None
    plan = make_plan(matrix, matrix.cells, store, set())
    assert [p.action for p in plan.cells] == ["running", "run"]
    result = run_plan(plan, LocalProcessExecutor(command=fake_command))
    assert [st for _, _, st in result.rows] == ["running", "ran"]
    lock.release()
    assert store.try_lock(matrix.cells[0].cell_id) is not None


def test_partial_cell_dir_is_cleared_and_its_log_kept(tmp_path, fake_command):
    matrix = load_matrix(write_matrix(tmp_path / "m.yaml", ["ok"]))
    cell_dir = tmp_path / "runs" / "fake" / matrix.cells[0].cell_id
    (cell_dir / "ckpt").mkdir(parents=True)
    (cell_dir / "cell.log").write_text("old attempt\n")
    (cell_dir / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "loss": 9}\n{"tor')
    _, _, by = run(tmp_path, fake_command, ["ok"])
    assert by["ok"]["outcome"] == "completed"
    assert (cell_dir / "cell.log.1").read_text() == "old attempt\n"
    assert not (cell_dir / "ckpt").exists()
    assert '"loss": 9' not in (cell_dir / "metrics.jsonl").read_text()
    expected = {
        "cell.json",
        "cell.log",
        "cell.log.1",
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
    }
    assert {p.name for p in cell_dir.iterdir()} == expected


def test_a_damaged_summary_is_run_again_and_its_file_kept(tmp_path, fake_command):
    """One validity rule for summary.json (store_files.read_summary): resume reruns a cell whose
    summary has a value of the wrong type, keeping the damaged file as summary.json.1."""
    plan, _, _ = run(tmp_path, fake_command, ["ok"])
    cell_dir = tmp_path / "runs" / "fake" / plan.cells[0].cell.cell_id
    damaged = json.loads((cell_dir / "summary.json").read_text())
    damaged["memory"]["train"]["peak_bytes"] = "big"
    (cell_dir / "summary.json").write_text(json.dumps(damaged))
    plan2, _, by = run(tmp_path, fake_command, ["ok"])
    assert [p.action for p in plan2.cells] == ["run"]
    assert by["ok"]["outcome"] == "completed"
    assert json.loads((cell_dir / "summary.json.1").read_text())["memory"]["train"] == {
        "peak_bytes": "big"
    }


class _BrokenTracker:
    """A tracker whose every hook fails (an outage, a bug in its client)."""

    def on_cell_start(self, cell_id, info, config):
        raise RuntimeError("tracker down")

    on_record = on_cell_end = on_cell_start

    def close(self):
        pass


def test_a_tracker_failure_is_a_warning_on_stderr_and_the_cell_still_completes(
    tmp_path, fake_command, capfd
):
    matrix = load_matrix(write_matrix(tmp_path / "m.yaml", ["ok"]))
    store = Store(tmp_path / "runs", matrix.name)
    plan = make_plan(matrix, matrix.cells, store, set())
    result = run_plan(plan, LocalProcessExecutor(command=fake_command), tracker=_BrokenTracker())
    assert result.outcomes() == ["completed"]
    out, err = capfd.readouterr()
    assert "warning: tracker" not in out  # stdout is the summary table's
    assert "warning: tracker _BrokenTracker.on_cell_start failed: tracker down" in err
