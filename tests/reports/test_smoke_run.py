"""The report of a real store: the smoke matrix run by the real runner and the real cell
(the session's ``smoke_run``, tests/smoke_run.py), rendered twice.

The run itself (its files, outcomes, resume) is checked by tests/runner/test_real_cell.py and
tests/runner/test_writers.py; here only what the report makes of it.
"""

from __future__ import annotations

import pytest

from reports import load_results, write_report


@pytest.mark.slow
def test_render_real_smoke_run(smoke_run, tmp_path):
    assert smoke_run.returncode == 0, smoke_run.output
    store = load_results(smoke_run.matrix_dir)
    assert store.name == "smoke" and len(store.cells) == 2
    assert store.axes == ("attention.mode",)
    assert all(c.outcome == "completed" and c.exact() for c in store.cells)

    out = write_report(smoke_run.matrix_dir, tmp_path / "EXPERIMENTS.md")
    text = out.read_text(encoding="utf-8")
    assert "| `attention.mode` | `causal` (1), `prefix_bidirectional` (1) |" in text
    assert "`attention.mode`: causal vs prefix_bidirectional" in text
    assert "## Provenance" in text and "- git commit: `" in text
    for name in ("accuracy", "loss", "memory"):
        assert (tmp_path / "EXPERIMENTS_plots" / f"{name}.png").stat().st_size > 1000
    again = write_report(smoke_run.matrix_dir, tmp_path / "again" / "EXPERIMENTS.md")
    assert again.read_bytes() == out.read_bytes()
