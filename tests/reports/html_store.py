"""The page tests' store: the demo-shaped store of ``plot_stores.demo_store`` plus an OOM cell
and a damaged cell, scored on a JSONL test split whose captcha PNGs are drawn by the data
generator (``render_captcha``) for each sample's answer, so the page has images to inline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from harness.contracts.schema import CONFIG_FILE, PREDICTIONS_FILE, SUMMARY_FILE
from harness.data.captcha import render_captcha
from tests.reports.plot_stores import ACCUMULATION, ATTENTION, MIB, demo_store
from tests.reports.synthetic import pattern, write_cell

OOM_CELL, DAMAGED_CELL = "cell6", "cell7"


def _test_split(root: Path, answers: dict[str, str]) -> Path:
    """A JSONL split with one rendered PNG per sample id."""
    images = root / "images"
    images.mkdir(parents=True)
    lines = []
    for i, (sid, text) in enumerate(sorted(answers.items())):
        name = f"{sid}.png"
        render_captcha(text, np.random.default_rng(i), 96, 32).save(images / name)
        lines.append(json.dumps({"id": sid, "image": f"images/{name}", "answer": text}))
    path = root / "test.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def html_store(root: Path) -> Path:
    """Eight cells: the demo's six (one stopped by its time cap), an OOM and a damaged one."""
    store = demo_store(root)
    write_cell(
        store,
        OOM_CELL,
        {**ATTENTION[2], **ACCUMULATION[1]},
        repeat=1,
        matrix="attention",
        outcome="oom",
        budget=600 * MIB,
        oom={"phase": "train", "in_use_bytes": 590 * MIB, "budget_bytes": 600 * MIB},
    )
    damaged = write_cell(
        store,
        DAMAGED_CELL,
        {**ATTENTION[0], **ACCUMULATION[1]},
        repeat=1,
        matrix="attention",
        correct=pattern(300, 500, "damaged"),
    )
    (damaged / SUMMARY_FILE).write_bytes(b'{"outcome": "completed", "metrics": {"n": "many"')
    answers = {}
    for line in (store / "cell0" / PREDICTIONS_FILE).read_text().splitlines():
        record = json.loads(line)
        answers[record["id"]] = record["answer"]
    split = _test_split(root / "data", answers)
    for cell_dir in sorted(p for p in store.iterdir() if (p / CONFIG_FILE).is_file()):
        config = yaml.safe_load((cell_dir / CONFIG_FILE).read_text())
        config["data"].update(kind="jsonl", test_path=str(split), val_path=str(split))
        (cell_dir / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=True))
    return store
