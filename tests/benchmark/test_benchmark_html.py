"""``benchmark ... --output report.html``: a real run of the CLI on a tiny model fine-tuned in the
test, its page opened from file:// in a real headless Chromium (the store page tests' browser and
request interception, ``tests/reports/test_html_page.py``): no console message, no request, base
and trained in the table, and the differences view lists exactly the samples whose score differs
in the JSON results. Screenshots go to the test's tmp dir (and to $HTML_SHOTS when set)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.benchmark.cli import main
from harness.benchmark.render import render
from harness.benchmark.result_schema import read_results
from harness.benchmark.settings import BenchmarkConfig
from harness.models.prefix_lm import PROMPT_TEMPLATE
from tests.benchmark.builders import qa_pairs, run_cli, train_tiny
from tests.reports.test_html_page import Loaded, _shot, browser  # noqa: F401 - the fixture

VIEWS = ("results", "findings", "samples", "report")
UNLEARNED = [("7-7", "0"), ("8-8", "0"), ("9-9", "0")]
"""Questions the tiny model was not trained on: both models get them wrong (not listed)."""


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, base_dir):
    return train_tiny(base_dir, tmp_path_factory.mktemp("trained") / "model")


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory, trained_dir, base_dir) -> Path:
    """The real CLI in a subprocess, QA: learned questions and unlearned ones."""
    root = tmp_path_factory.mktemp("bench-html")
    pairs = [*qa_pairs(), *UNLEARNED]
    rows = [{"id": f"q{i}", "question": q, "answer": a} for i, (q, a) in enumerate(pairs)]
    data = root / "qa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = root / "out" / "report.html"
    args = ["--trained_model", str(trained_dir), "--base_model", str(base_dir)]
    done = run_cli(*args, "--data", str(data), "--output", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    return out


def _ids(loaded: Loaded, table: str) -> list[str]:
    return loaded.page.eval_on_selector_all(
        f"#{table} tbody tr", "rows => rows.map(r => r.dataset.sample)"
    )


def test_output_html_writes_the_page_beside_the_markdown_and_the_json(qa_run):
    assert sorted(p.name for p in qa_run.parent.iterdir()) == [
        "report.html",
        "report.json",
        "report.md",
    ]
    results = read_results(qa_run.with_suffix(".json"))
    assert qa_run.with_suffix(".md").read_text() == render(results)
    page = qa_run.read_text()
    assert "default-src 'none'" in page and "<script src" not in page


def test_output_names(tmp_path):
    page = BenchmarkConfig(trained_model=".", output=Path("r.html"))
    assert (page.html_path, page.markdown_path, page.json_path) == (
        Path("r.html"),
        Path("r.md"),
        Path("r.json"),
    )
    md = BenchmarkConfig(trained_model=".", output=Path("r.md"))
    assert (md.html_path, md.markdown_path, md.json_path) == (None, Path("r.md"), Path("r.json"))


def test_the_qa_page_shows_both_sides_and_exactly_the_discordant_samples(
    browser,  # noqa: F811 - the fixture imported above
    qa_run,
    tmp_path,
):
    results = read_results(qa_run.with_suffix(".json"))
    page = Loaded(browser, qa_run)
    for view in VIEWS:
        page.show(view)
        page.page.wait_for_timeout(200)
        assert page.stray_text() == [], view
        _shot(page, f"benchmark-qa-{view}", tmp_path)
    assert (page.requests, page.console) == ([], [])

    page.show("results")
    m = results["metrics"]
    row = page.page.inner_text("#benchmark-table tr[data-metric^='exact match']")
    for side in ("base", "trained"):
        assert f"({m[side]['exact_match_k']}/{m[side]['n']})" in row, row
    assert page.traces("#score-plot") == (1, 1)
    page.show("findings")
    verdict = page.page.get_attribute("#verdict", "data-verdict")
    assert verdict == results["comparison"]["verdict"] == "improvement"

    page.show("samples")
    samples = results["samples"]
    only_trained = [
        s["id"] for s in samples if s["trained"]["correct"] and not s["base"]["correct"]
    ]
    only_base = [s["id"] for s in samples if s["base"]["correct"] and not s["trained"]["correct"]]
    same = [s["id"] for s in samples if s["base"]["correct"] == s["trained"]["correct"]]
    assert only_trained and same  # the view must leave some samples out to be tested
    assert _ids(page, "table-only-trained") == only_trained
    assert _ids(page, "table-only-base") == only_base
    first = next(s for s in samples if s["id"] == only_trained[0])
    cells = page.page.locator(f"#table-only-trained tr[data-sample='{first['id']}'] td")
    texts = cells.all_inner_texts()
    question = dict(enumerate(qa_pairs()))[int(first["id"][1:])][0]
    assert texts[1:] == [
        question,
        first["trained"]["answer"],
        first["base"]["prediction"].strip(),
        first["trained"]["prediction"],
    ], texts
    page.close()


def test_the_perplexity_page_lists_the_per_sample_losses(
    browser,  # noqa: F811
    trained_dir,
    base_dir,
    tmp_path,
):
    data = tmp_path / "texts.jsonl"
    lines = [
        {"id": f"t{i}", "text": PROMPT_TEMPLATE.format(question=q) + a}
        for i, (q, a) in enumerate(qa_pairs(3))
    ]
    lines.append({"id": "other", "text": "a dog ran far away."})
    data.write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = tmp_path / "ppl.html"
    args = ["--trained_model", str(trained_dir), "--base_model", str(base_dir), "--data", str(data)]
    assert main([*args, "--output", str(out), "--quiet"]) == 0
    results = read_results(out.with_suffix(".json"))
    assert results["task"] == "perplexity"
    rows = sorted(
        results["samples"],
        key=lambda s: -abs(s["trained"]["mean_nll"] - s["base"]["mean_nll"]),
    )
    page = Loaded(browser, out)
    page.show("samples")
    assert _ids(page, "differences") == [s["id"] for s in rows]
    shown = page.page.eval_on_selector_all(
        "#differences tbody tr",
        "rows => rows.map(r => [...r.cells].slice(2).map(c => c.innerText))",
    )
    expected = [
        [
            f"{s['base']['mean_nll']:.4f}",
            f"{s['trained']['mean_nll']:.4f}",
            f"{s['trained']['mean_nll'] - s['base']['mean_nll']:+.4f}",
        ]
        for s in rows
    ]
    assert shown == expected
    assert page.traces("#per-sample-plot") == (2, 2)  # the samples and the diagonal
    _shot(page, "benchmark-perplexity-samples", tmp_path)
    page.show("results")
    _shot(page, "benchmark-perplexity-results", tmp_path)
    assert (page.requests, page.console) == ([], [])
    page.close()


def test_the_vision_qa_page_inlines_the_images_of_the_trained_models_errors(
    browser,  # noqa: F811
    tmp_path,
):
    """A harness tiny-vlm checkpoint on captchas: each listed sample shows its image, inlined."""
    from harness.cell.checkpoints import save_checkpoint
    from harness.cell.trainable import setup_trainable
    from harness.contracts.config import parse_cell_config
    from harness.data.captcha import generate_split
    from harness.models import build_model
    from tests.cell_helpers import tiny_cell

    split = generate_split(tmp_path / "captcha", "test", 3)
    cfg = parse_cell_config(tiny_cell(tmp_path / "cap", model__num_layers=2))
    torch.manual_seed(cfg.seed)
    model, _ = build_model(cfg.model)
    setup_trainable(model, cfg)
    with torch.no_grad():  # "training": every trainable tensor moves
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    ckpt = save_checkpoint(model, cfg, tmp_path / "ckpt" / "best.safetensors", step=1, metric=0.0)
    out = tmp_path / "vision.html"
    args = ["--trained_model", str(ckpt), "--data", str(split), "--max_new_tokens", "3"]
    assert main([*args, "--output", str(out), "--quiet"]) == 0
    results = read_results(out.with_suffix(".json"))
    wrong = [s["id"] for s in results["samples"] if not s["trained"]["correct"]]
    assert wrong  # three new tokens cannot spell a six-character captcha
    page = Loaded(browser, out)
    page.show("samples")
    assert _ids(page, "table-errors") == wrong
    differ = [
        s["id"] for s in results["samples"] if s["base"]["correct"] != s["trained"]["correct"]
    ]
    shown = [*_ids(page, "table-only-trained"), *_ids(page, "table-only-base")]
    assert sorted(shown) == sorted(differ)
    sources = page.page.eval_on_selector_all(
        "#table-errors tbody tr img.thumb", "imgs => imgs.map(i => i.getAttribute('src'))"
    )
    assert len(sources) == len(wrong)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    widths = page.page.eval_on_selector_all(
        "#table-errors img.thumb", "i => i.map(x => x.naturalWidth)"
    )
    assert all(w > 0 for w in widths)  # the inlined PNGs decode
    _shot(page, "benchmark-vision-samples", tmp_path)
    assert (page.requests, page.console) == ([], [])
    page.close()
