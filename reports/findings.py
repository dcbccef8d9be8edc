"""Findings computed from a store, never written by hand: ``findings(store) -> list[Finding]``.

Accuracy comparisons and confounds live in ``reports/comparisons.py``; this module adds outcomes,
memory (ratios between the values of an axis, cells over the budget), error kinds from
predictions, and recommendations derived only from configuration-level wins (matched seeds).
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from reports import fmt
from reports.comparisons import (
    KINDS,
    Config,
    Finding,
    accuracy_findings,
    axis_pairs,
    build_configs,
    confound_findings,
    multiple_testing_finding,
    repeat_findings,
    single_run_finding,
    sweep_axes,
)
from reports.noise import aa_pairs, against_floor, noise_findings
from reports.results import ERROR_KINDS, CellResult, Results
from reports.tables import error_counts, peak

__all__ = ["KINDS", "Finding", "findings", "recommendations"]


def _outcome_kind(cell: CellResult) -> str:
    """The outcome, with completed cells that trained less than their budget counted apart."""
    short = cell.shortfall
    if short is None:
        return "OOM" if cell.outcome == "oom" else cell.outcome
    return "completed, time cap" if short.startswith("time cap") else "completed, short of budget"


def outcome_findings(store: Results) -> list[Finding]:
    """How many cells ended how (cells stopped short of their budget apart), then one line per
    cell that did not complete or did not train its full budget."""
    counts = Counter(_outcome_kind(c) for c in store.cells)
    order = (
        "completed",
        "completed, time cap",
        "completed, short of budget",
        "OOM",
        "timeout",
        "diverged",
        "failed",
        "interrupted",
        "incomplete",
    )
    parts = [f"{counts[k]} {k}" for k in order if counts[k]]
    sep = "; " if any("," in k for k in counts) else ", "
    bad = [c for c in store.cells if _outcome_kind(c) != "completed"]
    out = [Finding("outcomes", f"{len(store.cells)} cells: {sep.join(parts)}.", alert=bool(bad))]
    for c in bad:
        where = fmt.assignment(c.axes) if c.axes else ""
        out.append(Finding("outcomes", f"`{c.cell_id}` ({where}): {fmt.outcome(c)}.", alert=True))
    return out


def _peak(config: Config) -> float | None:
    """Mean train peak (eval peak when train is missing) over the completed cells."""
    peaks = [peak(c, "train") or peak(c, "eval") for c in config.cells if c.outcome == "completed"]
    peaks = [p for p in peaks if p]
    return sum(peaks) / len(peaks) if peaks else None


def _oom(config: Config) -> int | None:
    """In-use bytes of an OOM cell of this configuration (0 when unknown), None without OOM."""
    for c in config.cells:
        if c.outcome == "oom":
            return c.section("oom").get("in_use_bytes") or 0
    return None


def memory_findings(store: Results, configs: list[Config]) -> list[Finding]:
    """Peak-memory ratio between the values of each axis, over one-axis pairs."""
    out = []
    for axis in sweep_axes(store):
        groups: dict[tuple, dict[str, Any]] = {}
        for a, b in axis_pairs(store, configs, axis):
            g = groups.setdefault(
                (fmt.value(a.values[axis]), fmt.value(b.values[axis])),
                {"ratios": [], "pairs": [], "oom": Counter()},
            )
            pa, pb = _peak(a), _peak(b)
            if pa and pb:
                g["ratios"].append(pb / pa)
                g["pairs"].append((pa, pb))
            for side, here, there in (("a", a, pb), ("b", b, pa)):
                if _oom(here) is not None and there:
                    g["oom"][side] += 1
        for (va, vb), g in groups.items():
            out += _memory_texts(axis, va, vb, g)
    return out


def _memory_texts(axis: str, va: str, vb: str, g: dict[str, Any]) -> list[Finding]:
    out = []
    ratios = g["ratios"]
    if ratios and statistics.median(ratios) < 1:  # state the larger side first
        va, vb = vb, va
        ratios = [1 / r for r in ratios]
        g = {
            **g,
            "pairs": [(pb, pa) for pa, pb in g["pairs"]],
            "oom": Counter({"a": g["oom"]["b"], "b": g["oom"]["a"]}),
        }
    if len(ratios) == 1:
        ((pa, pb),) = g["pairs"]
        out.append(
            f"`{axis}`: train peak memory {vb} / {va} = {ratios[0]:.2f}x "
            f"({fmt.nbytes(pb)} vs {fmt.nbytes(pa)})."
        )
    elif ratios:
        out.append(
            f"`{axis}`: train peak memory {vb} / {va} = {statistics.median(ratios):.2f}x "
            f"(median over {len(ratios)} pairs, range {min(ratios):.2f}x–{max(ratios):.2f}x)."
        )
    for side, value, other in (("a", va, vb), ("b", vb, va)):
        if g["oom"][side]:
            out.append(
                f"`{axis}`: {value} ran out of memory in {g['oom'][side]} pair(s) "
                f"where {other} completed."
            )
    return [Finding("memory", text, axis) for text in out]


def budget_findings(store: Results) -> list[Finding]:
    """Which cells exceeded the memory budget (OOM, or a completed peak above it)."""
    budgets = {c.section("memory").get("budget_bytes") for c in store.cells} - {None}
    over = []
    for c in store.cells:
        budget = c.section("memory").get("budget_bytes")
        top = peak(c, "train") or 0
        if c.outcome == "oom" or (budget and max(top, peak(c, "eval") or 0) > budget):
            over.append(c)
    peaks = [(peak(c, "train") or 0, c.cell_id) for c in store.cells if peak(c, "train")]
    highest = max(peaks) if peaks else None
    top = f"highest train peak {fmt.nbytes(highest[0])} (`{highest[1]}`)" if highest else ""
    if not budgets:
        head = "No memory budget was set" + (f"; {top}." if top else ".")
    else:
        limits = ", ".join(fmt.nbytes(b) for b in sorted(budgets))
        head = f"Memory budget {limits}: {len(over)} of {len(store.cells)} cells exceeded it" + (
            f"; {top}." if top else "."
        )
    out = [Finding("budget", head, alert=bool(over))]
    for c in over:
        text = f"`{c.cell_id}` ({fmt.assignment(c.axes)}): {fmt.outcome(c)}."
        out.append(Finding("budget", text, alert=True))
    return out


def error_findings(store: Results) -> list[Finding]:
    """Most common kinds of wrong predictions across all scored cells."""
    counts = error_counts(store.cells)
    wrong = counts["wrong"]
    if not wrong:
        scored = sum(len(c.predictions) for c in store.cells)
        return [Finding("errors", "Every stored prediction is correct.")] if scored else []
    kinds = sorted(ERROR_KINDS, key=lambda k: (-counts[k], ERROR_KINDS.index(k)))
    parts = [f"{k} {counts[k]} ({fmt.pct(counts[k] / wrong)})" for k in kinds if counts[k]]
    text = (
        f"Most common errors over {wrong} wrong predictions: {', '.join(parts)}; "
        f"{counts['wrong length']} had the wrong length."
    )
    return [Finding("errors", text)]


def _caveat(store: Results | None, axis: str, value: str) -> str:
    """Cells with ``axis=value`` that did not complete (a winner that often OOMs is no winner)."""
    if store is None:
        return ""
    cells = [c for c in store.cells if fmt.value(c.axes.get(axis)) == value]
    failed = Counter(
        "OOM" if c.outcome == "oom" else c.outcome for c in cells if c.outcome != "completed"
    )
    if not failed:
        return ""
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(failed.items()))
    return (
        f" Caveat: {sum(failed.values())} of {len(cells)} cells with it did not complete ({kinds})."
    )


def recommendations(found: list[Finding], store: Results | None = None) -> list[str]:
    """Per axis: a value to prefer only when it wins at the configuration level (matched seeds,
    both tests) and never loses; single-run comparisons recommend nothing."""
    out = []
    axes = sorted({f.axis for f in found if f.kind == "accuracy"})
    for axis in axes:
        sig = [f for f in found if f.kind == "accuracy" and f.axis == axis and f.claim]
        if not sig:
            continue
        total = sum(f.kind == "accuracy" and f.axis == axis and f.runs >= 2 for f in found)
        wins = Counter(fmt.value(f.winner) for f in sig)
        losers = {fmt.value(f.loser) for f in sig}
        best = sorted(v for v in wins if v not in losers)
        seeds = sorted({f.runs for f in sig})
        over = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
        if len(best) == 1:
            out.append(
                f"Prefer `{axis}={best[0]}`: significantly better over {over} matched seeds in "
                f"{wins[best[0]]} of {total} seed-level comparisons along `{axis}`, never "
                "significantly worse." + _caveat(store, axis, best[0])
            )
        elif best:  # several values win and never lose: none shown better than the others
            out.append(
                f"`{axis}`: no single best value: {', '.join(best)} each significantly better "
                f"than another value over {over} matched seeds and never significantly worse; "
                "no difference between them is shown."
            )
        else:
            out.append(
                f"`{axis}`: no single best value (significant wins over {over} seeds for "
                f"{', '.join(sorted(wins))}, depending on the other settings)."
            )
    if not out:
        out.append(_no_recommendation(found))
    suggestions = [f.suggestion for f in found if f.kind == "confounded" and f.suggestion]
    return out + list(dict.fromkeys(suggestions))


def _no_recommendation(found: list[Finding]) -> str:
    tested = [f for f in found if f.kind == "accuracy"]
    seeded = [f for f in tested if f.runs >= 2]
    single = [f for f in tested if f.runs < 2]
    if not tested:
        return "None can be made: no one-axis accuracy comparison was tested."
    if seeded:
        head = (
            "None can be made at this n: no configuration-level comparison (matched seeds, "
            "both tests) was significant"
        )
    else:
        head = (
            "None can be made: no comparison has matched seeds, so none is about the configurations"
        )
    differ = sum(f.significant for f in single)
    if differ:
        head += (
            f"; {differ} of the {len(single)} single-run comparisons found two runs that "
            "differ, which says nothing about their configurations (add `repeats: 3`)"
        )
    return head + "."


def findings(store: Results) -> list[Finding]:
    """Every finding, grouped in the order of KINDS."""
    configs = build_configs(store)
    pairs = aa_pairs(store, configs)
    noise = noise_findings(store, pairs)
    skip = frozenset((id(p.a), id(p.b)) for p in pairs)
    accuracy = against_floor(accuracy_findings(store, configs, skip), noise)
    found = (
        outcome_findings(store)
        + noise
        + accuracy
        + confound_findings(store, configs)
        + multiple_testing_finding(accuracy)
        + single_run_finding(accuracy)
        + repeat_findings(configs)
        + memory_findings(store, configs)
        + budget_findings(store)
        + error_findings(store)
    )
    return sorted(found, key=lambda f: KINDS.index(f.kind))
