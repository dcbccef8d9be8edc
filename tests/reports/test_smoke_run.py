"""End to end: run the real smoke matrix with the real CLI, then render its store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reports import load_results, write_report

ROOT = Path(__file__).resolve().parents[2]
RUNNER, MATRIX = ROOT / "run_matrix.py", ROOT / "experiments" / "smoke.yaml"


@pytest.mark.skipif(
    not (RUNNER.exists() and MATRIX.exists()),
    reason="run_matrix.py or experiments/smoke.yaml is not in this checkout yet",
)
def test_render_real_smoke_run(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(MATRIX), "--store", str(tmp_path), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (store_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    store = load_results(store_dir)
    assert store.name == "smoke" and len(store.cells) == 2
    assert store.axes == ("attention.mode",)
    assert all(c.outcome == "completed" and c.exact() for c in store.cells)

    out = write_report(store_dir, tmp_path / "EXPERIMENTS.md")
    text = out.read_text(encoding="utf-8")
    assert "| `attention.mode` | `causal` (1), `prefix_bidirectional` (1) |" in text
    assert "`attention.mode`: causal vs prefix_bidirectional" in text
    assert "## Provenance" in text and "- git commit: `" in text
    for name in ("accuracy", "loss", "memory"):
        assert (tmp_path / "EXPERIMENTS_plots" / f"{name}.png").stat().st_size > 1000
    again = write_report(store_dir, tmp_path / "again" / "EXPERIMENTS.md")
    assert again.read_bytes() == out.read_bytes()
