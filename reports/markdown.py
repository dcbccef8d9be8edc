"""Assemble EXPERIMENTS.md: ``render_markdown(store, plot_paths) -> str`` (pure, deterministic).

No clock, no paths outside the store's name: the same stored results give the same bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from reports import fmt, tables
from reports.findings import Finding, findings, recommendations
from reports.headline import headline
from reports.plateau import plateau_lines
from reports.plots import MAX_PANELS, MAX_ROWS, MAX_SERIES, plot_axes
from reports.results import Results
from reports.seed_level import over_seeds
from reports.wording import FINDINGS_RULE

MAX_ITEMS = 30
"""Findings listed per section; the rest are counted (the tables hold every cell)."""
HEADLINE = (
    "model.name",
    "model.path",
    "data.kind",
    "data.train_count",
    "data.val_count",
    "data.test_count",
    "train.method",
    "train.max_steps",
    "train.micro_batch",
    "train.grad_accum",
    "train.lr",
    "train.precision",
    "runtime.device",
    "runtime.memory_budget_gb",
    "runtime.timeout_s",
)
SECTIONS = (
    ("outcomes", "Outcomes"),
    ("noise_floor", "A/A noise floor"),
    ("accuracy", "Accuracy: one-axis comparisons"),
    ("not_comparable", "Not comparable"),
    ("confounded", "Confounded comparisons"),
    ("multiple_testing", "Multiple comparisons"),
    ("single_run", "Run-to-run variance"),
    ("repeats", "Repeats"),
    ("memory", "Memory"),
    ("budget", "Memory budget"),
    ("errors", "Errors"),
)
MEMORY_NOTES = {
    "cuda": "CUDA: `torch.cuda.max_memory_allocated` within each phase",
    "cpu_rss": "CPU: peak process RSS during the phase (reset at its start; the process's own baseline included)",
}


def _matrix(store: Results) -> list[str]:
    out = ["## Matrix", ""]
    out.append(tables.axes_table(store) if store.axes else "A single configuration (no axes vary).")
    head = [f"- `{k}`: `{fmt.value(store.fixed[k])}`" for k in HEADLINE if k in store.fixed]
    if head:
        out += ["", "Settings shared by every cell:", "", *head]
    rest = tables.settings_lines(store)
    if rest:
        out += [
            "",
            f"<details><summary>All {len(rest)} fixed settings</summary>",
            "",
            *rest,
            "",
            "</details>",
        ]
    return out


def _results(store: Results) -> list[str]:
    out = ["## Results", ""]
    kinds = sorted(
        {str(c.section("memory").get("kind")) for c in store.cells if c.summary} - {"None"}
    )
    notes = [MEMORY_NOTES.get(k, k) for k in kinds]
    out.append(
        "Exact match is k/n on the held-out split with a 95% Wilson interval; CER is the "
        "character error rate; peak memory per phase"
        + (f" ({'; '.join(notes)})." if notes else ".")
    )
    if any(fmt.scored_on(c) for c in store.cells):
        out += [
            "",
            "**Not every score is held out**: `scored on` names the split and weights behind "
            "each score. A cell without `data.test_path` is scored on its validation split "
            "(which chose its best step, unless final weights were scored), so that score is "
            "not held out.",
        ]
    out += ["", tables.results_table(store)]
    stuck = plateau_lines(store)
    if stuck:
        out += [
            "",
            "**Loss plateau**: these cells' scores are those of a model that ignores the image:",
            "",
            *stuck,
        ]
    return out


def _image(plots: Mapping[str, str], name: str, alt: str) -> list[str]:
    return ["", f"![{alt}]({plots[name]})"] if name in plots else []


def _sweep_black(store: Results) -> str:
    """What the sweep plot's black points and intervals are (``reports/plot_sweeps.py``)."""
    if over_seeds(store):
        return (
            "black: the mean over seeds with its 95% t interval over the seeds (seed variance), "
            "circles: each seed's exact match, averaged over the other settings"
        )
    return (
        "black: the runs at each value pooled (sum of k over sum of n) with a 95% Wilson "
        "interval over samples (one run per configuration: no seed variance in it)"
    )


def _plots(store: Results, plots: Mapping[str, str]) -> list[str]:
    if not plots:
        return []
    out = ["", "## Plots"]
    capped = len(store.cells) > MAX_ROWS
    out += _image(plots, "accuracy", "Exact match per cell with 95% intervals")
    if capped and "accuracy" in plots:
        out += [
            "",
            f"_Shows the {MAX_ROWS} cells with the highest exact match of "
            f"{len(store.cells)}; the table lists all._",
        ]
    out += _image(plots, "seeds", "Exact match over seeds per configuration")
    if "seeds" in plots:
        out += [
            "",
            "_Each seed's exact match (dots) and the mean with its 95% interval over the seeds "
            "(black: seed variance, the level a configuration-level claim rests on)._",
        ]
    out += _image(plots, "memory", "Peak memory per cell, OOM at the budget")
    if capped and "memory" in plots:
        out += [
            "",
            f"_Shows the {MAX_ROWS} cells with the highest peak memory of {len(store.cells)}._",
        ]
    out += _image(plots, "sweeps", "Exact match vs each swept axis")
    if "sweeps" in plots:
        out += [
            "",
            f"_Swept axes: {', '.join(f'`{a}`' for a in plot_axes(store)[:MAX_PANELS])}; "
            f"{_sweep_black(store)}, thin lines: up to {MAX_SERIES} single settings of the "
            "other axes (mean over their seeds)._",
        ]
    return out


def _items(found: list[Finding]) -> list[str]:
    """Bullets, at most MAX_ITEMS: the most significant first when some are left out."""
    if len(found) > MAX_ITEMS:
        found = sorted(found, key=lambda f: f.p_value if f.p_value is not None else 2.0)
    lines = [f"- {f.text}" for f in found[:MAX_ITEMS]]
    if len(found) > MAX_ITEMS:
        rest = found[MAX_ITEMS:]
        sig = sum(f.significant for f in rest)
        lines.append(f"- ... and {len(rest)} more ({sig} significant); see the tables above.")
    return lines


def _findings(store: Results, found: list[Finding]) -> list[str]:
    out = [
        "",
        "## Findings",
        "",
        FINDINGS_RULE,
    ]
    for kind, title in SECTIONS:
        items = [f for f in found if f.kind == kind]
        table = {"repeats": tables.repeats_table, "errors": tables.errors_table}.get(kind)
        rendered = table(store) if table else None
        if not items and not rendered:
            continue
        out += ["", f"### {title}", ""]
        if rendered:
            out += [rendered, ""] if items else [rendered]
        out += _items(items)
    out += ["", "## Recommendations", ""]
    out += [f"{i}. {text}" for i, text in enumerate(recommendations(found, store), 1)]
    return out


def _counted(values: list[str]) -> str:
    counts = Counter(values)
    if len(counts) == 1:
        return f"`{values[0]}`"
    return ", ".join(f"`{v}` ({n} cells)" for v, n in sorted(counts.items()))


def _provenance(store: Results) -> list[str]:
    provs = [c.section("provenance") for c in store.cells if c.summary]
    out = ["", "## Provenance", ""]
    if not provs:
        return [*out, "No cell has finished, so no provenance was recorded."]
    for key in (
        "git_commit",
        "git_dirty",
        "python",
        "torch",
        "cuda",
        "transformers",
        "peft",
        "device_name",
        "hostname",
    ):
        values = [fmt.value(p.get(key)) for p in provs if key in p]
        if values:
            out.append(f"- {key.replace('_', ' ')}: {_counted(values)}")
    packages: dict[str, set[str]] = {}
    for p in provs:
        for name, version in (p.get("packages") or {}).items():
            packages.setdefault(str(name), set()).add(str(version))
    if packages:
        out.append(
            "- packages: "
            + ", ".join(f"{n} {'/'.join(sorted(v))}" for n, v in sorted(packages.items()))
        )
    started = sorted(str(p["started_at"]) for p in provs if p.get("started_at"))
    finished = sorted(str(p["finished_at"]) for p in provs if p.get("finished_at"))
    if started or finished:
        out.append(
            f"- dates: {started[0] if started else '?'} to {finished[-1] if finished else '?'}"
        )
    return out


def render_markdown(store: Results, plot_paths: Mapping[str, str] | None = None) -> str:
    """The whole report. ``plot_paths``: plot name -> link relative to the markdown file."""
    plots = dict(plot_paths or {})
    found = findings(store)
    out = [f"# Experiments: {store.name}", ""]
    if store.description:
        out += [store.description.strip(), ""]
    out.append(
        f"_Generated from the run store `{store.name}` ({len(store.cells)} cells) by "
        f"`python -m reports`; regenerate any time, the same results give the same file._"
    )
    top = headline(store, found)
    out += ["", *top, ""] if top else [""]
    out += [*_matrix(store), "", *_results(store)]
    out += ["", "## Training metrics", "", tables.training_table(store)]
    out += _image(plots, "loss", "Training loss per cell")
    out += _plots(store, {k: v for k, v in plots.items() if k != "loss"})
    out += _findings(store, found) + _provenance(store)
    return "\n".join(out) + "\n"
