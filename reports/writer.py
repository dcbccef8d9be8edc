"""Write a report to disk: the only side effects of the package (markdown + plot files)."""

from __future__ import annotations

from pathlib import Path

from harness.contracts.store_files import atomic_write_text
from reports.markdown import render_markdown
from reports.plots import make_plots
from reports.results import load_results

REPORT_FILE = "EXPERIMENTS.md"


def plots_dir(out_path: Path) -> Path:
    """Where the plots of a report go: ``<stem>_plots/`` next to the markdown file."""
    return out_path.parent / f"{out_path.stem}_plots"


def write_report(
    store_dir: str | Path, out_path: str | Path | None = None, *, plots: bool = True
) -> Path:
    """Render ``store_dir`` to ``out_path`` (default ``store_dir/EXPERIMENTS.md``) plus plots.

    Raises ``ResultsError`` when ``store_dir`` is not a run store. Returns the markdown path.
    """
    store = load_results(store_dir)
    out = Path(out_path) if out_path is not None else Path(store_dir) / REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    links: dict[str, str] = {}
    if plots:
        made = make_plots(store, plots_dir(out))
        links = {name: path.relative_to(out.parent).as_posix() for name, path in made.items()}
    atomic_write_text(out, render_markdown(store, links))
    return out
