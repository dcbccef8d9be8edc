"""The page of one ``benchmark`` run (``benchmark ... --output report.html``): the store page's
machinery (``reports.html.page``: the same template, Plotly bundle, CSP and helpers) over the
plain JSON results of ``harness/benchmark/result_schema.py``.

``reports`` may not import ``harness.benchmark``, so the caller passes the task's own words with
the results (``BenchmarkWords``: the markdown report's headline, metric table, differences
sentence, proof lines and the report itself) and what the data file says about each sample (its
prompt, its image); this module only lays them out. The per-sample differences are the
markdown's rule: the samples whose compared score (``comparison.score``) differs between base and
trained, largest change first for a continuous score; beside them, the trained model's errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.store_files import atomic_write_text
from reports.html.page import render_page
from reports.html.samples import MAX_IMAGES, _data_uri

ASSETS = ("util.js", "benchmark.js", "app.js")
"""The page's scripts, in load order (``reports/html/assets/``)."""
MAX_ROWS = 2000
"""Per-sample rows the page holds (the rest are in the JSON results)."""
MAX_TEXT = 4000
"""Characters of a prompt or an output kept per sample."""
OUTPUT_KEYS = ("prediction", "completions")
"""Keys of a per-sample record that hold the model's output (QA, HumanEval)."""


@dataclass
class BenchmarkWords:
    """What the task says about a run, in the markdown report's own words."""

    headline: str
    """``The trained model is better than its base (McNemar (exact), p = ...)``."""
    headers: list[str]
    """The result table's columns."""
    rows: list[list[str]]
    """The result table: metric, base, trained, delta."""
    differences: str = ""
    """The differences sentence (``6 of 6 samples differ: ...``); empty without a base."""
    proof: list[str] = field(default_factory=list)
    """The proof of change, one sentence each."""
    markdown: str = ""
    """The whole markdown report (loader report, setup, timings, provenance)."""
    rate: bool = True
    """The task's score is a rate (plotted in percent); False for a number (an NLL)."""


@dataclass
class SampleInput:
    """What the data file says about one sample."""

    prompt: str = ""
    """The question, the text scored, or the code prompt."""
    image: Path | None = None
    """The sample's image file (vision QA)."""


def _clip(text: Any) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"… ({len(text)} characters)"


def _output(record: dict[str, Any] | None) -> str | None:
    """A model's output for one sample: its prediction, or its completions (one per sample)."""
    if record is None:
        return None
    for key in OUTPUT_KEYS:
        value = record.get(key)
        if isinstance(value, list):
            statuses = record.get("statuses") or []
            parts = [
                f"[{statuses[i] if i < len(statuses) else '?'}]\n{v}" for i, v in enumerate(value)
            ]
            return _clip("\n".join(parts))
        if value is not None:
            return _clip(value)
    return None


def _side(record: dict[str, Any] | None, key: str, binary: bool) -> dict[str, Any] | None:
    if record is None:
        return None
    score = record.get(key)
    return {
        "output": _output(record),
        "score": score,
        "right": bool(score) if binary else None,
    }


def _score_key(r: dict[str, Any]) -> tuple[str, bool]:
    """(the per-sample key compared, whether it is pass/fail): the comparison's, else the one
    key every trained record shares that is a pass/fail or a number."""
    cmp = r["comparison"]
    if cmp is not None:
        return cmp["score"], cmp["kind"] == "binary"
    first = r["samples"][0]["trained"] if r["samples"] else {}
    for key in ("correct", "passed", "mean_nll"):
        if key in first:
            return key, key != "mean_nll"
    return "", False


def differing(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The samples whose score differs between the two models (the markdown's rule), largest
    change first for a number; none without a base."""
    key, binary = _score_key(r)
    if r["comparison"] is None or not key:
        return []
    rows = [s for s in r["samples"] if s["base"][key] != s["trained"][key]]
    if not binary:
        rows.sort(key=lambda s: -abs(s["trained"][key] - s["base"][key]))
    return rows


def errors(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The trained model's errors (a pass/fail score), or without a base its per-sample scores,
    worst first (a number; a compared number is all in ``differing``)."""
    key, binary = _score_key(r)
    if not key:
        return []
    if binary:
        return [s for s in r["samples"] if not s["trained"][key]]
    if r["comparison"] is not None:
        return []
    sign = -1 if key == "mean_nll" else 1  # an NLL: the highest is the worst
    return sorted(r["samples"], key=lambda s: sign * s["trained"][key])


def _row(s: dict[str, Any], key: str, binary: bool, inputs: dict[str, SampleInput]) -> dict:
    base, trained = s["base"], s["trained"]
    return {
        "id": s["id"],
        "prompt": _clip(inputs.get(s["id"], SampleInput()).prompt),
        "answer": trained.get("answer"),
        "base": _side(base, key, binary),
        "trained": _side(trained, key, binary),
        "delta": trained[key] - base[key] if not binary and base is not None else None,
    }


def _images(rows: list[dict[str, Any]], inputs: dict[str, SampleInput]) -> dict[str, str]:
    """Sample id -> ``data:`` URI of its image, for the first ``MAX_IMAGES`` rows that have one."""
    out: dict[str, str] = {}
    for row in rows:
        if row["id"] in out:
            continue
        path = inputs.get(row["id"], SampleInput()).image
        uri = _data_uri(path) if path is not None and len(out) < MAX_IMAGES else None
        if uri:
            out[row["id"]] = uri
    return out


def _interval_metric(metrics: dict[str, Any]) -> str | None:
    """The headline metric: the first whose 95% interval the results store (``<key>_ci95``)."""
    return next((k for k in sorted(metrics) if f"{k}_ci95" in metrics), None)


def _plot(r: dict[str, Any], rate: bool) -> dict[str, Any] | None:
    """Each model's headline metric with its stored interval (nothing recomputed)."""
    trained = r["metrics"]["trained"]
    key = _interval_metric(trained)
    if key is None:
        return None
    sides = [("base", r["metrics"]["base"]), ("trained", trained)]
    points = [
        {"side": name, "value": m[key], "lo": m[f"{key}_ci95"][0], "hi": m[f"{key}_ci95"][1]}
        for name, m in sides
        if m and m.get(key) is not None and m.get(f"{key}_ci95")
    ]
    return {"metric": key, "points": points, "rate": rate}


def benchmark_payload(
    r: dict[str, Any], words: BenchmarkWords, inputs: dict[str, SampleInput]
) -> dict[str, Any]:
    """The JSON object the benchmark page renders, from the results ``r`` (``read_results``)."""
    key, binary = _score_key(r)
    diff, wrong = differing(r), errors(r)
    rows = [_row(s, key, binary, inputs) for s in diff[:MAX_ROWS]]
    wrong_rows = [_row(s, key, binary, inputs) for s in wrong[:MAX_ROWS]]
    name = r["trained"]["reference"] or r["trained"]["source"]
    return {
        "name": name,
        "title": f"Benchmark: {name} vs its base"
        if r["base"]["evaluated"]
        else f"Benchmark: {name}",
        "task": r["task"],
        "data": r["data"],
        "unchanged": bool(r["proof"]["unchanged"]),
        "exit_status": r["exit_status"],
        "words": {
            "headline": words.headline,
            "headers": words.headers,
            "rows": words.rows,
            "differences": words.differences,
            "proof": words.proof,
            "warnings": list(r["warnings"]),
        },
        "comparison": r["comparison"],
        "plot": _plot(r, words.rate),
        "score_key": key,
        "binary": binary,
        "n": len(r["samples"]),
        "differing": rows,
        "differing_total": len(diff),
        "errors": wrong_rows,
        "errors_total": len(wrong),
        "images": _images(rows + wrong_rows, inputs),
        "markdown": words.markdown,
    }


def write_benchmark_html(
    r: dict[str, Any],
    out: str | Path,
    words: BenchmarkWords,
    inputs: dict[str, SampleInput] | None = None,
) -> Path:
    """Write the page of the benchmark results ``r`` to ``out``; return the path."""
    payload = benchmark_payload(r, words, inputs or {})
    out = Path(out)
    atomic_write_text(out, render_page(payload, assets=ASSETS, title=payload["title"]))
    return out
