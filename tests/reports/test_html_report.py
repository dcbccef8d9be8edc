"""The page without a browser: one file with nothing to fetch, the markdown's numbers and
findings, a bounded number of inlined images, deterministic bytes, the CLI and the runner."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.runner.cli import _PageRefresh
from harness.runner.tracking import NullTracker
from reports import load_results, tables
from reports.findings import findings
from reports.html import HTML_FILE, render_html, write_html
from reports.html.payload import build_payload
from reports.html.samples import MAX_IMAGES
from tests.reports.html_store import DAMAGED_CELL, OOM_CELL, html_store
from tests.runner.conftest import FAKE_COMMAND, write_matrix

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return html_store(tmp_path_factory.mktemp("html"))


@pytest.fixture(scope="module")
def payload(store) -> dict:
    return build_payload(load_results(store), store)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_the_page_is_one_file_that_names_nothing_outside_it(store):
    text = render_html(load_results(store), store)
    parser = _Tags()
    parser.feed(text)
    linked = [(t, a) for t, a in parser.tags if a.get("src") or a.get("href") or t == "link"]
    assert linked == []
    csp = next(
        a["content"] for t, a in parser.tags if a.get("http-equiv") == "Content-Security-Policy"
    )
    assert csp.startswith("default-src 'none'")
    assert not re.search(r"https?://", text.split('id="plotly-gz"')[0])


def test_the_page_shows_the_markdown_numbers_and_findings(store, payload):
    results = load_results(store)
    for cell, record in zip(results.cells, payload["cells"], strict=True):
        assert (record["score"]["text"], record["score"]["ci_text"]) == tables.exact_text(cell)
    assert [f["text"] for f in payload["findings"]] == [f.text for f in findings(results)]
    status = {c["id"]: c["status"] for c in payload["cells"]}
    assert (status[OOM_CELL], status[DAMAGED_CELL], status["cell4"]) == (
        "OOM",
        "damaged",
        "time cap",
    )


def test_images_are_inlined_for_split_decisions_first_and_capped(store, payload):
    images = payload["images"]
    assert 0 < len(images) <= MAX_IMAGES
    assert all(uri.startswith("data:image/png;base64,") for uri in images.values())
    right = {}
    for p in store.glob("cell[0-5]/predictions.jsonl"):
        for r in map(json.loads, p.read_text().splitlines()):
            right.setdefault(r["id"], []).append(r["correct"])
    split = [i for i, v in right.items() if any(v) and not all(v)]
    assert set(images) <= set(right)
    assert sum(i in images for i in split) == min(len(split), MAX_IMAGES)


def test_the_same_store_gives_the_same_bytes(store, tmp_path):
    a, b = write_html(store, tmp_path / "a.html"), write_html(store, tmp_path / "b.html")
    assert a.read_bytes() == b.read_bytes()


def _reports(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reports", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_cli_writes_the_page_beside_the_markdown_or_at_a_path(store, tmp_path):
    done = _reports(str(store), "--no-plots", "--html")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(store / "EXPERIMENTS.md"), str(store / HTML_FILE)]
    out = tmp_path / "page" / "x.html"
    done = _reports(str(store), "--no-plots", "--out", str(tmp_path / "r.md"), "--html", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    bad = _reports(str(store), "--no-plots", "--html", str(tmp_path))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "--html" in bad.stderr and "Traceback" not in bad.stderr


def test_the_runner_rewrites_the_page_after_every_finished_cell(store, tmp_path):
    """``run_matrix.py --report``'s tracker: each finished cell rewrites EXPERIMENTS.html."""
    report = tmp_path / "EXPERIMENTS.md"
    refresh = _PageRefresh(NullTracker(), store, report)
    page = report.with_name(HTML_FILE)
    for cell in ("cell0", "cell1"):
        refresh.on_cell_end(cell, {})
        assert '"progress":{"cells":8,"finished":7' in page.read_text()
        page.unlink()
    refresh.close()


def test_run_matrix_report_writes_the_markdown_and_the_page(tmp_path):
    matrix = write_matrix(tmp_path / "m.yaml", ["a", "b"])
    store = tmp_path / "runs"
    args = [str(matrix), "--store", str(store), "--quiet", "--cell-command", FAKE_COMMAND]
    done = subprocess.run(
        [sys.executable, "run_matrix.py", *args, "--report"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    page = (store / "fake" / HTML_FILE).read_text()
    assert (store / "fake" / "EXPERIMENTS.md").is_file()
    assert '"progress":{"cells":2,"finished":2' in page


def test_captcha_images_are_found_in_the_cached_split_the_cells_read(tmp_path):
    """``data.kind: captcha``: the split generated under ``data.cache_dir`` (ids ``test:N``)."""
    from harness.data.captcha import ensure_captcha_split
    from tests.reports.synthetic import pattern, write_cell

    cache = tmp_path / "cache"
    jsonl = ensure_captcha_split(cache, "test", 12)
    settings = {"data.cache_dir": str(cache), "data.test_count": 12}
    store = tmp_path / "store"
    for name, k in (("a", 4), ("b", 9)):
        cell = write_cell(
            store, name, {"train.lr": k / 10}, correct=pattern(k, 12, name), settings=settings
        )
        records = [
            json.loads(line) for line in (cell / "predictions.jsonl").read_text().splitlines()
        ]
        for i, r in enumerate(records):
            r["id"] = f"test:{i + 1}"  # the data reader's ids: file stem and line number
        (cell / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    results = load_results(store)
    both = results.cell("a").correct_ids & results.cell("b").correct_ids
    images = build_payload(results, store)["images"]
    # the samples only one cell read right, then those both got wrong
    assert set(images) == {f"test:{i}" for i in range(1, 13)} - both
    lines = jsonl.read_text().splitlines()
    for sid, uri in images.items():
        image = json.loads(lines[int(sid.split(":")[1]) - 1])["image"]
        raw = (jsonl.parent / image).read_bytes()
        assert uri == "data:image/png;base64," + base64.b64encode(raw).decode()


def test_compare_html_writes_the_before_after_page(store, tmp_path):
    out = tmp_path / "cmp.html"
    done = _reports("compare", str(store), str(store), "--html", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# Comparison:") and done.stderr.strip() == str(out)
    page = out.read_text()
    assert '"section":"Matched cells"' in page and '"pair":["before/cell0","after/cell0"]' in page
    bad = _reports("compare", str(store), str(store), "--html", str(tmp_path))
    assert bad.returncode == 2 and "--html" in bad.stderr and "Traceback" not in bad.stderr


def test_outcomes_are_red_only_where_a_cell_did_not_complete(payload, tmp_path):
    """The html_store has an OOM and a damaged cell: its outcomes lines are alerts; a store whose
    every cell completed shows the same kind of line without one (no red 'all completed')."""
    from tests.reports.synthetic import write_attention_store

    outcomes = [f for f in payload["findings"] if f["kind"] == "outcomes"]
    assert len(outcomes) > 1 and all(f["alert"] for f in outcomes)
    clean = write_attention_store(tmp_path / "clean", [[450, 460], [440, 455], [445, 450]])
    found = build_payload(load_results(clean), clean)["findings"]
    (line,) = [f for f in found if f["kind"] == "outcomes"]
    assert line["text"].endswith("completed.") and line["alert"] is False
    assert not any(f["alert"] for f in found)
