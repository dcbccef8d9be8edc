"""The loss plateau in words: a cell that never learned to read says so instead of a bare 0%.

A freshly initialised tiny-vlm first predicts each answer position's marginal distribution (for
uniform 6-digit answers plus the end token, 6 ln 10 / 7 ~ 1.97 nats a token), then, after a
number of steps that varies from run to run, learns to read the image and its loss falls below
that level. The marginal-prediction loss is computed from the cell's own held-out answers (the
best a model that ignores the image can do, one character a token), so the check needs no
knowledge of the dataset; it is only made for models with a character tokenizer (tiny-vlm),
where characters are the tokens the training loss averages over.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from reports.results import CellResult, Results

END = "\x00"
"""The end-of-answer position (the EOS token the loss also counts)."""
CHAR_TOKEN_MODELS = ("tiny-vlm",)
WINDOW = 5
"""Logged train records averaged (a step's loss on 16 samples is noisy)."""
TOLERANCE = 0.05
"""Relative distance from the marginal loss that still counts as on the plateau."""
MOST = 0.5
"""A cell is reported when it sat on the plateau for more than this share of its logged steps."""


@dataclass(frozen=True)
class Plateau:
    """Where a cell's loss sat at the marginal-prediction level."""

    marginal_loss: float
    entered: int
    """First logged step whose smoothed loss is within the tolerance."""
    left: int | None
    """First later step whose smoothed loss is below the band (None: it never left)."""
    last_step: int


def marginal_loss(answers: Sequence[str]) -> float | None:
    """Mean cross-entropy a token of a model that predicts each position's character marginal
    (the end token included), over ``answers``; None without answers."""
    if not answers:
        return None
    width = max(len(a) for a in answers) + 1
    padded = [a + END * (width - len(a)) for a in answers]
    total, tokens = 0.0, 0
    for pos in range(width):
        live = [p[pos] for p in padded if pos == 0 or p[pos - 1] != END]
        counts = Counter(live)
        n = len(live)
        total -= sum(c * math.log(c / n) for c in counts.values())
        tokens += n
    return total / tokens


def _smoothed(curve: Sequence[tuple[int, float, float | None]]) -> list[tuple[int, float]]:
    out = []
    for i, (step, _, _) in enumerate(curve):
        window = [loss for _, loss, _ in curve[max(0, i - WINDOW + 1) : i + 1]]
        out.append((step, sum(window) / len(window)))
    return out


def model_name(store: Results, cell: CellResult) -> object:
    """``model.name`` of a cell: its parsed config, else its axes, else the store's fixed one."""
    if cell.config is not None:
        return (cell.config.get("model") or {}).get("name")
    return cell.axes.get("model.name", store.fixed.get("model.name"))


def find_plateau(cell: CellResult, model: object = "tiny-vlm") -> Plateau | None:
    """The plateau of ``cell``'s train curve, or None (no curve, no answers, a ``model`` without
    a character tokenizer, or the loss never came near the marginal level)."""
    if model not in CHAR_TOKEN_MODELS or not cell.curve:
        return None
    level = marginal_loss([str(p.get("answer", "")) for p in cell.predictions])
    if not level:
        return None
    band = TOLERANCE * level
    entered = left = None
    for step, loss in _smoothed(cell.curve):
        if entered is None and abs(loss - level) <= band:
            entered = step
        elif entered is not None and loss < level - band:
            left = step
            break
    if entered is None:
        return None
    return Plateau(level, entered, left, cell.curve[-1][0])


def stuck(plateau: Plateau) -> bool:
    """Whether the loss sat on the plateau for most of the logged steps."""
    end = plateau.left if plateau.left is not None else plateau.last_step
    return end - plateau.entered > MOST * plateau.last_step


def plateau_sentence(plateau: Plateau) -> str:
    """One sentence: where the loss sat, until when, and what may help."""
    level = f"~{plateau.marginal_loss:.2f}"
    if plateau.left is None:
        return (
            f"stayed at the marginal-prediction loss of {level} for all its "
            f"{plateau.last_step} steps: the model did not learn to read; more steps, a higher "
            "resolution or a larger stem may help"
        )
    return (
        f"stayed at the marginal-prediction loss of {level} until step {plateau.left} of "
        f"{plateau.last_step}: the model began to read late; more steps, a higher resolution "
        "or a larger stem may help"
    )


def plateau_lines(store: Results) -> list[str]:
    """Markdown bullets for the cells that sat on the plateau most of their budget."""
    lines = []
    for cell in store.cells:
        plateau = find_plateau(cell, model_name(store, cell))
        if plateau is not None and stuck(plateau):
            lines.append(f"- `{cell.cell_id}` {plateau_sentence(plateau)}.")
    return lines
