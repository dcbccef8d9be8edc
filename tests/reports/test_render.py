"""Rendering: golden markdown, byte-identical re-renders, every outcome, fallbacks, comparisons."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build_small_store

from reports import compare_stores, load_results, render_markdown, write_comparison, write_report
from tests.reports.synthetic import pattern, write_cell

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parents[2]


def check_golden(name: str, text: str) -> None:
    """Compare with tests/reports/golden/<name>; UPDATE_GOLDEN=1 rewrites the file."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; UPDATE_GOLDEN=1 to accept"


def test_golden_small_store(small_store):
    out = write_report(small_store)
    assert out == small_store / "EXPERIMENTS.md"
    check_golden("small_store.md", out.read_text(encoding="utf-8"))


def test_every_outcome_renders(small_store):
    text = render_markdown(load_results(small_store))
    assert "**OOM** (train, 1.90 GiB in use / budget 2.00 GiB)" in text
    assert "**failed** (train: RuntimeError: boom \\| bad)" in text
    assert "**timeout** (limit 10.0 s; train: cell exceeded its time limit)" in text
    assert "**interrupted** (train: SIGINT)" in text
    assert "not run / incomplete" in text
    assert "second line" not in text


def test_rerender_is_byte_identical(small_store, tmp_path):
    first = write_report(small_store, tmp_path / "one" / "EXPERIMENTS.md")
    second = write_report(small_store, tmp_path / "two" / "EXPERIMENTS.md")
    assert first.read_bytes() == second.read_bytes()
    plots_one = sorted((tmp_path / "one" / "EXPERIMENTS_plots").iterdir())
    plots_two = sorted((tmp_path / "two" / "EXPERIMENTS_plots").iterdir())
    assert [p.name for p in plots_one] == ["accuracy.png", "loss.png", "memory.png", "seeds.png"]
    for a, b in zip(plots_one, plots_two, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    for name in ("accuracy", "loss", "memory", "seeds"):
        assert f"](EXPERIMENTS_plots/{name}.png)" in first.read_text(encoding="utf-8")


@pytest.mark.slow
def test_identical_across_processes_and_hash_seeds(small_store, tmp_path):
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"r{seed}" / "EXPERIMENTS.md"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-m", "reports", str(small_store), "--out", str(out)],
            check=True,
            cwd=ROOT,
            env=env,
            capture_output=True,
        )
        outs.append(out)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    for png in sorted((outs[0].parent / "EXPERIMENTS_plots").iterdir()):
        assert png.read_bytes() == (outs[1].parent / "EXPERIMENTS_plots" / png.name).read_bytes()


def test_sweep_plot_for_numeric_axis(tmp_path):
    store = tmp_path / "sweep"
    for i, accum in enumerate((1, 2, 4)):
        write_cell(store, f"c{i}", {"train.grad_accum": accum}, correct=pattern(5 + 3 * i, 20))
    out = write_report(store)
    assert "](EXPERIMENTS_plots/sweeps.png)" in out.read_text(encoding="utf-8")
    assert (store / "EXPERIMENTS_plots" / "sweeps.png").stat().st_size > 1000


def test_no_plots(small_store, tmp_path):
    out = write_report(small_store, tmp_path / "r.md", plots=False)
    assert "![" not in out.read_text(encoding="utf-8")
    assert not (tmp_path / "r_plots").exists()


def test_axes_from_config_diff_without_cell_json(tmp_path):
    store = tmp_path / "noaxes"
    write_cell(store, "x", {"train.lr": 0.001}, correct=pattern(5, 20), cell_json=False)
    write_cell(store, "y", {"train.lr": 0.01}, correct=pattern(9, 20), cell_json=False)
    loaded = load_results(store)
    assert loaded.axes == ("train.lr",)
    assert loaded.name == "noaxes"
    assert "| `train.lr` | `0.001` (1), `0.01` (1) |" in render_markdown(loaded)


def test_torn_metrics_line_is_tolerated(small_store):
    metrics = small_store / "c-causal-8" / "metrics.jsonl"
    metrics.write_text(metrics.read_text(encoding="utf-8") + '{"kind": "tra', encoding="utf-8")
    assert len(load_results(small_store).cell("c-causal-8").curve) == 20


def test_invalid_summary_shows_as_incomplete(small_store):
    (small_store / "c-causal-8" / "summary.json").write_text(json.dumps({"x": 1}), encoding="utf-8")
    text = render_markdown(load_results(small_store))
    assert "not run / incomplete (summary.json: not a summary" in text


def _after_store(tmp_path: Path) -> Path:
    after = tmp_path / "after" / "attention"
    shutil.copytree(build_small_store(tmp_path / "before"), after)
    return after


def test_compare_flags_regression(tmp_path):
    before = tmp_path / "before" / "attention"
    after = _after_store(tmp_path)
    shutil.rmtree(after / "c-bidir-8")
    write_cell(
        after,
        "c-bidir-8",
        {"attention.mode": "prefix_bidirectional", "train.grad_accum": 8, "seed": 0},
        correct=pattern(10, 40, "z"),
        matrix="attention",
    )
    shutil.rmtree(after / "c-causal-8")
    write_cell(
        after,
        "c-causal-8",
        {"attention.mode": "causal", "train.grad_accum": 8, "seed": 0},
        outcome="oom",
        matrix="attention",
        oom={"phase": "eval", "in_use_bytes": None, "budget_bytes": None, "message": "x"},
    )
    text = compare_stores(before, after)
    assert "2 regressions" in text
    assert "**regression**: now **OOM** (eval" in text
    assert "-50.0 pts (McNemar exact p < 0.001)" in text
    check_golden("comparison.md", text)


def test_compare_matches_by_axes_when_ids_change(tmp_path):
    before = tmp_path / "before" / "attention"
    after = _after_store(tmp_path)
    shutil.rmtree(after / "c-causal-8")
    write_cell(
        after,
        "new-id",
        {"attention.mode": "causal", "train.grad_accum": 8, "seed": 0},
        correct=pattern(18, 40, "x"),
        matrix="attention",
    )
    out = write_comparison(before, after, tmp_path / "cmp.md")
    text = out.read_text(encoding="utf-8")
    assert "`c-causal-8 → new-id`" in text
    assert "0 only before, 0 only after" in text
    assert "0 regressions" in text
