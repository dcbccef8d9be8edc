"""The page's size and generation time, beside the markdown report's time in the same run.

Run: ``make bench`` (or ``pytest tests/benchmarks/test_html_bench.py -m "slow or not slow"
--benchmark-only -s``). Goals for the demo-shaped store (8 cells, 500 scored samples each, one
OOM and one damaged cell, captcha images): a page <= 5 MB written in <= 2 s. The 1,000-cell sweep
store (``write_sweep_store``) shows what grows with the cell count: the cells' records (config
text, curves, predictions) and the findings; Plotly's bundle and the inlined images (at most
``MAX_IMAGES``) do not. Plotly's bundle is compressed once per process (a warm-up round).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reports import write_report
from reports.html import write_html
from tests.reports.html_store import html_store
from tests.reports.synthetic import write_sweep_store

MAX_BYTES = 5 * 10**6
TARGET_S = 2.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return html_store(tmp_path_factory.mktemp("bench-html"))


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sweep_store(tmp_path_factory.mktemp("bench-html") / "sweep")


def _measure(benchmark, store: Path, name: str) -> tuple[int, float]:
    cpu: list[float] = []

    def render() -> Path:
        start = time.process_time()
        out = write_html(store)
        cpu.append(time.process_time() - start)
        return out

    out = benchmark.pedantic(render, rounds=3, iterations=1, warmup_rounds=1)
    size = out.stat().st_size
    start = time.perf_counter()
    write_report(store, store / "EXPERIMENTS.md", plots=True)
    markdown_s = time.perf_counter() - start
    benchmark.extra_info.update(page_bytes=size, cpu_s_min=round(min(cpu), 3))
    benchmark.extra_info["markdown_with_plots_s"] = round(markdown_s, 3)
    if benchmark.stats is not None:
        print(
            f"\n{name}: page {size / 1e6:.2f} MB in {benchmark.stats.stats.min:.2f} s wall (min), "
            f"{min(cpu):.2f} s CPU; markdown report with plots {markdown_s:.2f} s"
        )
    return size, min(cpu)


def test_html_demo_store(benchmark, demo: Path) -> None:
    size, _ = _measure(benchmark, demo, "demo-shaped store (8 cells)")
    assert size <= MAX_BYTES


@pytest.mark.slow
def test_html_1000_cells(benchmark, big_store: Path) -> None:
    size, _ = _measure(benchmark, big_store, "1,000-cell sweep store")
    assert size > 0
