"""EXPERIMENTS.html: one self-contained page per run store (tables, plots, findings, samples).

``write_html(store_dir, out_path)`` writes it; ``render_html(store, store_dir)`` is the pure
core. The page is built from the same results and findings as EXPERIMENTS.md
(``reports.results``, ``reports.findings``) and inlines everything it shows, Plotly included,
so that it opens from ``file://`` with no network.
"""

from __future__ import annotations

from pathlib import Path

from harness.contracts.store_files import atomic_write_text
from reports.html.page import PageError, render_page
from reports.html.payload import build_payload
from reports.results import Results, load_results

HTML_FILE = "EXPERIMENTS.html"

__all__ = ["HTML_FILE", "PageError", "render_html", "write_html"]


def render_html(store: Results, store_dir: str | Path) -> str:
    """The page of ``store`` (read from ``store_dir``, whose cell folders hold the logs)."""
    return render_page(build_payload(store, Path(store_dir)))


def write_html(store_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """Write the page of ``store_dir`` to ``out_path`` (default ``store_dir/EXPERIMENTS.html``).

    Raises ``ResultsError`` when ``store_dir`` is not a run store. Returns the page's path.
    """
    store = load_results(store_dir)
    out = Path(out_path) if out_path is not None else Path(store_dir) / HTML_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render_html(store, store_dir))
    return out
