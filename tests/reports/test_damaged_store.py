"""A run store damaged by hand or by a crash still renders: the damaged cell is listed with
the file and key at fault, every other cell is reported as usual, nothing raises."""

from __future__ import annotations

import json

import pytest

from reports.results import load_results
from reports.writer import write_report
from tests.test_fuzz import BOMB

CELL = "c-causal-8"


def _set(path, keys, value):
    data = json.loads(path.read_text(encoding="utf-8"))
    node = data
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    path.write_text(json.dumps(data), encoding="utf-8")


DAMAGED = [
    ("summary.json", b"\x00\xff\xfe binary garbage", "summary.json: unreadable"),
    ("summary.json", b"", "summary.json: unreadable"),
    ("summary.json", b'{"outcome": "completed", "cell_id": "c", "se', "summary.json: unreadable"),
    ("summary.json", b"[1, 2]", "expected a JSON object, got list"),
    ("summary.json", (("metrics", "exact_match_k"), 10**30), "is not within 0..`metrics.n`"),
    ("summary.json", (("metrics", "n"), -1), "is not within 0..`metrics.n`"),
    ("summary.json", (("outcome",), 3), "`outcome` should be str"),
    ("metrics.jsonl", b"\xff\xfe\x00garbage\n{}\n", "metrics.jsonl: unreadable"),
    ("predictions.jsonl", b'{"id": 1, "correct": "yes"}\n{}\n', "predictions.jsonl:1"),
]
"""(file, new bytes or (key path, value), what the report says about the cell)."""


@pytest.mark.parametrize(("name", "damage", "said"), DAMAGED, ids=[d[2][:30] for d in DAMAGED])
def test_a_damaged_file_makes_a_damaged_cell(small_store, name, damage, said):
    path = small_store / CELL / name
    if isinstance(damage, bytes):
        path.write_bytes(damage)
    else:
        _set(path, *damage)
    results = load_results(small_store)
    (cell,) = [c for c in results.cells if c.cell_id == CELL]
    assert cell.summary is None and said in cell.problem and name in cell.problem
    assert sum(c.summary is not None for c in results.cells) == 6  # the others are intact
    text = write_report(small_store, plots=False).read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if f"`{CELL}`" in ln and "incomplete" in ln)
    assert name in line  # the report lists it, naming the file at fault


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("cell.json", b"\xff\x00"),
        ("cell.json", b'{"axes": [1, 2], "repeat": "x", "cell_id": 5}'),
        ("config.yaml", b"\xff\xfe\x00"),
        ("config.yaml", BOMB.encode()),
        ("config.yaml", b"a: &a [*a]\n"),
        ("config.yaml", b"seed: " + b"9" * 5000 + b"\n"),
        ("../matrix.json", b"\xff"),
        ("../matrix.json", b'{"axes": [1], "paired": {"p": ["attention.mode", 5]}, "name": 5}'),
    ],
)
def test_damaged_bookkeeping_files_are_read_around(small_store, name, content):
    """cell.json, config.yaml and matrix.json only label cells: damaged ones are skipped."""
    (small_store / CELL / name).write_bytes(content)
    out = write_report(small_store)  # with plots
    assert out.is_file() and CELL in out.read_text(encoding="utf-8")
