"""The plateau wording: a cell whose loss sat at the marginal-prediction level says so in words."""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness.contracts.schema import METRICS_FILE
from reports.markdown import render_markdown
from reports.plateau import find_plateau, marginal_loss, plateau_lines, stuck
from reports.results import load_results
from tests.reports.synthetic import answer, pattern, write_cell

STEPS = 100


def _curve(cell_dir: Path, losses: list[float]) -> None:
    records = [
        {"kind": "train", "step": s, "loss": loss, "token_accuracy": 0.2, "lr": 1e-3}
        for s, loss in enumerate(losses, 1)
    ]
    (cell_dir / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))


def _level(n: int = 40) -> float:
    return marginal_loss([answer(i) for i in range(n)])


def _plateau_then(drop_at: int | None) -> list[float]:
    """~4 nats at init, the marginal level from step 10 (with a small wiggle), then a fall."""
    level = _level()
    out = []
    for s in range(1, STEPS + 1):
        if s < 10:
            out.append(4.0 - (4.0 - level) * s / 10)
        elif drop_at is None or s < drop_at:
            out.append(level + 0.02 * math.sin(s))
        else:
            out.append(max(0.2, level - 0.1 * (s - drop_at + 1)))
    return out


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "styles"
    write_cell(store, "learns", {"seed": 0}, correct=pattern(30, 40), steps=STEPS)
    _curve(
        write_cell(store, "stuck", {"seed": 1}, correct=[False] * 40, steps=STEPS),
        _plateau_then(None),
    )
    _curve(
        write_cell(store, "late", {"seed": 2}, correct=pattern(2, 40), steps=STEPS),
        _plateau_then(80),
    )
    _curve(
        write_cell(store, "early", {"seed": 3}, correct=pattern(20, 40), steps=STEPS),
        _plateau_then(30),
    )
    return store


def test_the_marginal_loss_of_uniform_digits_is_6_ln10_over_7():
    answers = [str(d) * 6 for d in range(10)]
    assert math.isclose(marginal_loss(answers), 6 * math.log(10) / 7)
    assert marginal_loss(["12", "12"]) == 0.0 and marginal_loss([]) is None
    # answers of two lengths: the end token is uncertain at position 2, not after it
    assert math.isclose(marginal_loss(["1", "12"]), 2 * math.log(2) / 5)


def test_only_cells_on_the_plateau_for_most_of_their_budget_are_named(tmp_path):
    results = load_results(_store(tmp_path))
    found = {c.cell_id: find_plateau(c) for c in results.cells}
    assert found["learns"] is None or not stuck(found["learns"])
    assert found["stuck"].left is None and stuck(found["stuck"])
    assert found["late"].left >= 80 and stuck(found["late"])
    assert not stuck(found["early"])
    lines = plateau_lines(results)
    level = f"~{_level():.2f}"
    assert lines == [  # in the store's order (by seed)
        f"- `stuck` stayed at the marginal-prediction loss of {level} for all its {STEPS} "
        "steps: the model did not learn to read; more steps, a higher resolution or a larger "
        "stem may help.",
        f"- `late` stayed at the marginal-prediction loss of {level} until step "
        f"{found['late'].left} of {STEPS}: the model began to read late; more steps, a higher "
        "resolution or a larger stem may help.",
    ]


def test_the_report_says_it_in_words_beside_the_score(tmp_path):
    text = render_markdown(load_results(_store(tmp_path)))
    assert "**Loss plateau**" in text
    assert "`stuck` stayed at the marginal-prediction loss" in text
    assert "`early` stayed" not in text and "`learns` stayed" not in text


def test_models_without_a_character_tokenizer_are_not_judged(tmp_path):
    store = tmp_path / "hf"
    cell = write_cell(
        store,
        "stuck",
        {"seed": 0},
        correct=[False] * 40,
        steps=STEPS,
        settings={"model.name": "hf-causal-lm", "model.path": "/models/x"},
    )
    _curve(cell, _plateau_then(None))
    assert plateau_lines(load_results(store)) == []
