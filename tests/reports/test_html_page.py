"""The page in a real headless Chromium (Debian's ``chromium``, driven by Playwright's Python API;
no browser is downloaded): it loads from file:// with no console error and no request, the table
sorts and filters, each plot has its traces, the disagreement view lists exactly the discordant
samples of predictions.jsonl, and OOM / damaged cells show as such. A screenshot of each view is
written to the test's tmp dir (and to $HTML_SHOTS when set) for a person to look at."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from reports.html import write_html
from tests.reports.html_store import DAMAGED_CELL, OOM_CELL, html_store

INSTALL = "needs Chromium and Playwright: `bash .ci/install-browser` (apt-get install chromium; pip install playwright)"
VIEWS = ("results", "curves", "accuracy", "memory", "grid", "findings", "samples")


def _chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason=INSTALL)
    exe = _chromium()
    if exe is None:
        pytest.skip(INSTALL)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return html_store(tmp_path_factory.mktemp("html"))


@pytest.fixture(scope="module")
def page_file(store) -> Path:
    return write_html(store)


class Loaded:
    """A page opened from file://, with every console message and request attempt recorded."""

    def __init__(self, browser, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.route("**/*", self._route)
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=60_000)

    def _route(self, route) -> None:
        if route.request.url == self.url:
            route.continue_()
        else:
            self.requests.append(route.request.url)
            route.abort()

    def show(self, view: str) -> None:
        self.page.evaluate(f"location.hash = '#{view}'")
        self.page.wait_for_selector(f"body[data-view='{view}']")

    def traces(self, selector: str) -> tuple[int, int]:
        """(traces in the plot's data, traces drawn in its SVG) of a Plotly div."""
        found = self.page.evaluate(
            """(sel) => { const d = document.querySelector(sel);
              return [d.data.length, d.querySelectorAll('g.trace').length]; }""",
            selector,
        )
        return tuple(found)

    def stray_text(self) -> list[str]:
        """Text nodes of the shown view that are a JavaScript value printed by mistake."""
        return self.page.evaluate(
            """() => { const out = [], walk = document.createTreeWalker(
                 document.querySelector('main'), NodeFilter.SHOW_TEXT);
               while (walk.nextNode()) { const t = walk.currentNode.textContent.trim();
                 if (['null', 'undefined', 'NaN'].includes(t) || t.includes('[object ')) out.push(t); }
               return out; }"""
        )

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def loaded(browser, page_file):
    page = Loaded(browser, page_file)
    yield page
    page.close()


def _shot(page: Loaded, name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.png"
    page.page.screenshot(path=str(path), full_page=True)
    if os.environ.get("HTML_SHOTS"):
        Path(os.environ["HTML_SHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["HTML_SHOTS"]) / path.name)


def test_the_page_loads_offline_with_no_console_message_and_no_request(loaded, tmp_path):
    for view in VIEWS:
        loaded.show(view)
        loaded.page.wait_for_timeout(200)
        assert loaded.stray_text() == [], view
        _shot(loaded, view, tmp_path)
    assert loaded.requests == []
    assert loaded.console == []
    assert len(list(tmp_path.glob("*.png"))) == len(VIEWS)


def test_the_request_check_sees_a_request(browser, tmp_path):
    """The interception above is not blind: a page that loads a remote image is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="http://example.invalid/x.png"></body></html>')
    page = Loaded.__new__(Loaded)
    page.page = browser.new_page()
    page.requests, page.console, page.url = [], [], bad.resolve().as_uri()
    page.page.route("**/*", page._route)
    page.page.goto(page.url)
    page.page.wait_for_timeout(300)
    assert page.requests == ["http://example.invalid/x.png"]
    page.close()


def _rows(loaded: Loaded) -> list[str]:
    return loaded.page.eval_on_selector_all(
        "#results-table tbody tr.row", "rows => rows.map(r => r.dataset.cell)"
    )


def _rates(store: Path) -> dict[str, float]:
    out = {}
    for summary in store.glob("*/summary.json"):
        try:
            m = json.loads(summary.read_text()).get("metrics") or {}
        except json.JSONDecodeError:
            continue
        if m.get("n"):
            out[summary.parent.name] = m["exact_match_k"] / m["n"]
    return out


def test_the_table_sorts_and_filters(loaded, store):
    cells = sorted(p.name for p in store.iterdir() if p.is_dir() and p.name.startswith("cell"))
    assert sorted(_rows(loaded)) == cells
    rates = _rates(store)
    header = loaded.page.locator("#results-table th[data-key='exact']")
    header.click()
    order = _rows(loaded)
    scored = [c for c in order if c in rates]
    assert scored == sorted(rates, key=lambda c: (rates[c], order.index(c)))
    assert order[len(scored) :] and set(order[len(scored) :]) == set(cells) - set(rates)
    header.click()
    scored = [c for c in _rows(loaded) if c in rates]
    assert [rates[c] for c in scored] == sorted(rates.values(), reverse=True)
    loaded.page.locator("input[data-status='completed']").uncheck()
    assert sorted(_rows(loaded)) == sorted(["cell4", OOM_CELL, DAMAGED_CELL])
    loaded.page.locator("input[data-status='completed']").check()
    loaded.page.select_option("select[data-axis='attention']", "mode=causal, impl=sdpa")
    assert sorted(_rows(loaded)) == ["cell0", "cell1", DAMAGED_CELL]
    loaded.page.fill("#filter-text", "cell1")
    assert _rows(loaded) == ["cell1"]


def test_a_row_opens_its_config_provenance_and_log(loaded):
    row = loaded.page.locator("tr.row[data-cell='cell0']")
    row.click()
    details = loaded.page.locator("tr.row[data-cell='cell0'] + tr.detail")
    assert details.is_visible()
    text = details.inner_text()
    assert "config.yaml" in text and "provenance" in text


def test_oom_and_damaged_cells_are_shown_as_such(loaded, store, tmp_path):
    oom = loaded.page.locator(f"tr.row[data-cell='{OOM_CELL}']")
    assert oom.get_attribute("data-status") == "OOM"
    assert "OOM (train, 590 MiB in use" in oom.inner_text()
    damaged = loaded.page.locator(f"tr.row[data-cell='{DAMAGED_CELL}']")
    assert damaged.get_attribute("data-status") == "damaged"
    assert "summary.json" in damaged.inner_text()
    damaged.click()
    _shot(loaded, "results-damaged-open", tmp_path)
    loaded.show("memory")
    names = loaded.page.evaluate("document.getElementById('memory-plot').data.map(t => t.name)")
    assert "OOM (in use at failure)" in names
    ooms = loaded.page.evaluate(
        "document.getElementById('memory-plot').data.find(t => t.name.startsWith('OOM')).x"
    )
    assert ooms == [OOM_CELL]


def test_each_plot_has_the_expected_traces(loaded, store):
    with_curve = [p.parent.name for p in store.glob("*/metrics.jsonl") if p.read_text().strip()]
    with_curve = [c for c in with_curve if c != DAMAGED_CELL]  # its summary did not validate
    loaded.show("curves")
    assert loaded.traces("#curves-plot") == (len(with_curve), len(with_curve))
    loaded.page.check("input[name='curve-x'][value='samples']")
    xs = loaded.page.evaluate("document.getElementById('curves-plot').data[0].x.slice(0, 2)")
    assert xs == [10 * 4 * 4, 20 * 4 * 4]  # cell0: micro_batch 4 x grad_accum 4 per step
    loaded.show("accuracy")
    assert loaded.traces("#accuracy-cells") == (1, 1)
    points = loaded.page.evaluate("document.getElementById('accuracy-cells').data[0].x.length")
    assert points == len(_rates(store))
    # per axis: pooled + one line per setting of the other axes + the single runs
    assert loaded.traces(".axis-plot[data-axis='attention']") == (4, 4)
    assert loaded.traces(".axis-plot[data-axis='accumulation']") == (5, 5)
    loaded.show("memory")
    assert loaded.traces("#memory-plot") == (4, 4)  # train, eval, OOM, budget
    loaded.show("grid")
    assert loaded.traces("#grid-plot")[0] == 1
    loaded.page.select_option("#grid-metric", "outcome")
    text = loaded.page.evaluate("document.getElementById('grid-plot').data[0].text.flat()")
    assert any("OOM" in t for t in text) and any("damaged" in t for t in text)


def _predictions(store: Path, cell: str) -> dict[str, bool]:
    lines = (store / cell / "predictions.jsonl").read_text().splitlines()
    return {r["id"]: r["correct"] for r in map(json.loads, lines)}


def test_the_disagreement_view_lists_exactly_the_discordant_samples(loaded, store, tmp_path):
    loaded.show("samples")
    loaded.page.select_option("#pair-a", "cell2")
    loaded.page.select_option("#pair-b", "cell3")
    a, b = _predictions(store, "cell2"), _predictions(store, "cell3")
    only_a = sorted(i for i in a if a[i] and not b[i])
    only_b = sorted(i for i in a if b[i] and not a[i])
    assert only_a and only_b
    shown = loaded.page.evaluate(
        """() => [...document.querySelectorAll('#pair table')].map(
             t => [...t.querySelectorAll('tbody tr')].map(r => r.dataset.sample))"""
    )
    assert shown == [only_a, only_b]
    first = loaded.page.locator(f"#pair tr[data-sample='{only_a[0]}'] img.thumb")
    assert first.get_attribute("src").startswith("data:image/png;base64,")
    _shot(loaded, "samples-cell2-vs-cell3", tmp_path)
    loaded.page.select_option("#errors-cell", "cell3")
    wrong = loaded.page.eval_on_selector_all(
        "#errors tbody tr", "rs => rs.map(r => r.dataset.sample)"
    )
    assert wrong == sorted(i for i in b if not b[i])


def test_findings_link_to_the_cells_they_compare(loaded):
    loaded.show("findings")
    finding = loaded.page.locator(".finding.kind-accuracy").first
    chips = finding.locator("a.chip").all_inner_texts()
    assert len(chips) == 2
    finding.locator("a.chip").first.click()
    loaded.page.wait_for_selector("body[data-view='results']")
    assert sorted(_rows(loaded)) == sorted(chips)


def test_the_reload_toggle_is_remembered(loaded):
    assert "7 finished, 1 damaged" in loaded.page.inner_text("#progress-text")
    loaded.page.check("#reload")
    assert loaded.page.evaluate("localStorage.getItem('reports-html-reload')") == "1"
    loaded.page.uncheck("#reload")
    assert loaded.page.evaluate("localStorage.getItem('reports-html-reload')") == "0"


def _single_cell(root: Path) -> Path:
    from tests.reports.synthetic import pattern, write_cell

    write_cell(root / "one", "only", {}, correct=pattern(3, 10, "one"))
    return root / "one"


def _nothing_scored(root: Path) -> Path:
    from tests.reports.synthetic import write_cell

    write_cell(root / "none", "a", {"train.lr": 0.1}, outcome="diverged", finished=True)
    write_cell(root / "none", "b", {"train.lr": 0.2}, finished=False)
    return root / "none"


@pytest.mark.parametrize("shape", ["every_outcome", "long_values", "single_cell", "nothing_scored"])
def test_other_store_shapes_render_every_view_without_a_console_message(browser, tmp_path, shape):
    """Every outcome with unfinished cells; long axis values; one cell; nothing scored."""
    from tests.reports.conftest import build_small_store
    from tests.reports.plot_stores import long_store

    build = {
        "every_outcome": build_small_store,
        "long_values": long_store,
        "single_cell": _single_cell,
        "nothing_scored": _nothing_scored,
    }[shape]
    page = Loaded(browser, write_html(build(tmp_path)))
    for view in (*VIEWS, "results"):
        page.show(view)
        assert page.stray_text() == [], view
    _shot(page, f"{shape}-results", tmp_path)
    assert (page.requests, page.console) == ([], [])
    page.close()


def test_the_before_after_page_links_each_verdict_to_both_cells(browser, tmp_path):
    """``compare BEFORE AFTER --html``: both stores in one page, verdicts linked, the
    disagreement view on one cell before and after (checked against both predictions.jsonl)."""
    from reports.html.compare import write_comparison_html
    from tests.reports.plot_stores import demo_store

    before = demo_store(tmp_path / "before")
    after = demo_store(tmp_path / "after")
    lines = (after / "cell0" / "predictions.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for r in records[:40]:  # the after run reads the first 40 samples wrong
        r.update(correct=False, prediction="000000")
    (after / "cell0" / "predictions.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records)
    )
    page = Loaded(browser, write_comparison_html(before, after, tmp_path / "cmp.html"))
    assert sorted(_rows(page)) == sorted(
        f"{s}/cell{i}" for s in ("before", "after") for i in range(6)
    )
    page.show("findings")
    verdicts = page.page.locator(".finding").all()
    assert len(verdicts) == 6
    assert verdicts[0].locator("a.chip").all_inner_texts() == ["before/cell0", "after/cell0"]
    _shot(page, "compare-findings", tmp_path)
    page.show("samples")
    a, b = _predictions(before, "cell0"), _predictions(after, "cell0")
    shown = page.page.evaluate(
        """() => [...document.querySelectorAll('#pair table')].map(
             t => [...t.querySelectorAll('tbody tr')].map(r => r.dataset.sample))"""
    )
    assert shown == [sorted(i for i in a if a[i] and not b[i])]  # nothing right only after
    assert page.page.inner_text("#only-b").endswith(": 0")
    _shot(page, "compare-samples", tmp_path)
    assert (page.requests, page.console) == ([], [])
    page.close()
