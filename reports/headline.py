"""The report's headline: what is known, and at which level of evidence.

Configuration level: one-axis comparisons over matched seeds where the test over samples and the
test over seeds both give p < 0.05 (``Finding.claim``). Run level: comparisons of one trained run
per side, about those two runs only. The A/A noise floor: the gap between configurations that
train the same function. The seed spread: each configuration's mean over seeds with its range.
"""

from __future__ import annotations

from reports import fmt
from reports.comparisons import Finding, build_configs
from reports.results import Results
from reports.stats import mean_std

MAX_LISTED = 5
"""Configuration-level wins named in the headline; the findings list every one."""


def _configuration_level(tested: list[Finding]) -> str:
    seeded = [f for f in tested if f.runs >= 2]
    if not seeded:
        return (
            "- **Configuration level**: not measured: no one-axis comparison has two or more "
            "matched seeds on both sides, so no finding below is about a configuration."
        )
    claims = [f for f in seeded if f.claim]
    seeds = sorted({f.runs for f in seeded})
    over = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    if not claims:
        return (
            f"- **Configuration level** (over {over} matched seeds): no difference shown in "
            f"{len(seeded)} one-axis comparisons (a win needs the test over samples and the "
            "test over seeds both below 0.05)."
        )
    named = "; ".join(
        f"`{f.axis}`: {fmt.value(f.winner)} beats {fmt.value(f.loser)} "
        f"({fmt.pts(f.gap or 0.0)}, {f.runs} seeds)"
        for f in claims[:MAX_LISTED]
    )
    more = f"; {len(claims) - MAX_LISTED} more below" if len(claims) > MAX_LISTED else ""
    return (
        f"- **Configuration level** (over {over} matched seeds, the test over samples and the "
        f"test over seeds both p < 0.05): {len(claims)} of {len(seeded)} one-axis comparisons "
        f"show a win: {named}{more}."
    )


def _run_level(tested: list[Finding]) -> str | None:
    single = [f for f in tested if f.runs < 2]
    if not single:
        return None
    differ = sum(f.significant for f in single)
    return (
        f"- **Run level** (one trained run per side): {differ} of {len(single)} comparisons "
        "found two runs that differ on their samples; these are about the trained runs, not "
        "their configurations, and recommend nothing."
    )


def _noise(noise: list[Finding], tested: list[Finding]) -> str | None:
    if not noise:
        return None
    top = max(f.gap or 0.0 for f in noise)
    single = [f for f in tested if f.runs < 2 and f.gap is not None]
    within = sum(abs(f.gap) <= top for f in single)
    against = f"; {within} of {len(single)} single-run gaps are within it" if single else ""
    verdicts = [
        "equivalent" if "**equivalent within" in f.text else "not shown equivalent"
        for f in noise
        if f.runs >= 2
    ]
    seeds = f" (over seeds: {', '.join(verdicts)})" if verdicts else ""
    return (
        f"- **A/A noise floor**: configurations that train the same function differ by up to "
        f"{100 * top:.1f} pts between two runs{seeds}{against}."
    )


def _spread(store: Results) -> str | None:
    parts = []
    for c in build_configs(store):
        accs = [k / n for k, n in (x.exact() for x in c.scored)]
        if len(accs) >= 2:
            mean, std = mean_std(accs)
            parts.append(
                (
                    mean,
                    f"{c.label()}: {fmt.pct(mean)} ± {fmt.pct(std)} "
                    f"({fmt.pct(min(accs))}–{fmt.pct(max(accs))}, {len(accs)} seeds)",
                )
            )
    if not parts:
        return None
    best = max(parts)[1]
    return (
        f"- **Seed spread** (mean ± std over seeds, range): best {best}; every configuration "
        "in the Repeats table."
    )


def headline(store: Results, found: list[Finding]) -> list[str]:
    """The headline section's lines (empty when nothing was compared)."""
    tested = [f for f in found if f.kind == "accuracy"]
    noise = [f for f in found if f.kind == "noise_floor"]
    if not tested and not noise:
        return []
    lines = [_configuration_level(tested), _run_level(tested), _noise(noise, tested)]
    lines.append(_spread(store))
    return ["## Headline", "", *(line for line in lines if line)]
