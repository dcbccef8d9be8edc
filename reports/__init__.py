"""EXPERIMENTS-style reports from a run store: tables, plots, computed findings.

``write_report(store_dir)`` writes ``EXPERIMENTS.md`` and its plots; ``load_results`` +
``render_markdown`` are the pure core; ``compare_stores`` diffs two stores (before/after).
"""

from reports.before_after import compare_stores, write_comparison
from reports.markdown import render_markdown
from reports.plots import make_plots
from reports.results import CellResult, Results, ResultsError, load_results
from reports.writer import write_report

__all__ = [
    "CellResult",
    "Results",
    "ResultsError",
    "compare_stores",
    "load_results",
    "make_plots",
    "render_markdown",
    "write_comparison",
    "write_report",
]
