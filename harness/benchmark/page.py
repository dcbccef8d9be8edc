"""The HTML page of one ``benchmark`` run (``--output report.html``): the JSON results, the
markdown report's own words (``render``: headline, result table, proof) and the samples' prompts
and images from ``--data``, handed to ``reports.html.benchmark_page``, which lays them out with the
run store page's machinery. Nothing is recomputed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.render import _delta, _headline, _proof, render
from harness.benchmark.tasks import load_samples, task_spec
from harness.data.jsonl import DataError
from reports import fmt
from reports.html.benchmark_page import (
    BenchmarkWords,
    SampleInput,
    differing,
    errors,
    write_benchmark_html,
)

HEADERS = ["metric", "base", "trained", "Δ trained − base (95% CI, test)"]
"""The result table's columns (the markdown report's)."""


def words(r: dict[str, Any]) -> BenchmarkWords:
    """The markdown report's sentences and result table for the results ``r``."""
    task, metrics, cmp = r["task"], r["metrics"], r["comparison"]
    spec = task_spec(task)
    base = metrics["base"]
    base_rows = {k: v for k, _, v in spec.metric_rows(base)} if base else {}
    rows = [
        [
            label,
            base_rows.get(key, fmt.DASH),
            value,
            _delta(task, key, base, metrics["trained"], cmp) if base else fmt.DASH,
        ]
        for key, label, value in spec.metric_rows(metrics["trained"])
    ]
    sentence = ""
    if cmp is not None:
        sentence = spec.differences(differing(r), cmp, cmp["score"])[0]
    proof = [line[2:] for line in _proof(r) if line.startswith("- ")]
    return BenchmarkWords(
        _headline(task, r), HEADERS, rows, sentence, proof, render(r), spec.score_is_rate
    )


def sample_inputs(task: str, data: Path | None, ids: set[str]) -> dict[str, SampleInput]:
    """Prompt and image of each sample in ``ids``, read again from the data both models saw
    (QA records' question and image, text samples' text, code problems' prompt)."""
    try:
        samples = load_samples(task, data)
    except (BenchmarkInputError, DataError, OSError):
        return {}  # the file changed since the run: the page shows the samples without prompts
    out: dict[str, SampleInput] = {}
    for s in samples:
        sid = str(getattr(s, "id", None) or getattr(s, "task_id", ""))
        if sid in ids and sid not in out:
            prompt = next(
                (getattr(s, k) for k in ("question", "text", "prompt") if hasattr(s, k)), ""
            )
            out[sid] = SampleInput(str(prompt), getattr(s, "image_path", None))
    return out


def write_page(r: dict[str, Any], out: Path, data: Path | None) -> Path:
    """Write the page of the results ``r`` (``read_results``) to ``out``."""
    inputs = sample_inputs(r["task"], data, {s["id"] for s in [*differing(r), *errors(r)]})
    return write_benchmark_html(r, out, words(r), inputs)
