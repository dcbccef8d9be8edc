"""The markdown report of one ``benchmark`` run: a pure function of its JSON results.

Same results, same bytes: nothing here reads the clock, the machine or the files. Order: a loud
warning when the "trained" model is the base, the result (metrics with intervals, base vs trained
with a paired test), per-sample differences, the proof of change, the loader report, the setup,
timings, provenance.
"""

from __future__ import annotations

from typing import Any

from harness.benchmark.tasks import task_spec
from reports import fmt
from reports.tables import md_table

MAX_ROWS = 20
UNCHANGED_TITLE = "UNCHANGED: the \"trained\" model's logits equal the base model's"


def _delta(task: str, key: str, base: dict, trained: dict, cmp: dict | None) -> str:
    spec = task_spec(task)
    if cmp is not None and key == (spec.compared_row or cmp["score"]):
        lo, hi = cmp["ci95"]
        if not spec.score_is_rate:
            text = f"{cmp['diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        else:
            text = f"{fmt.pts(cmp['diff'])} {fmt.pts_interval(lo, hi)}"
        text = f"**{text}**" if cmp["significant"] else text
        return f"{text}, {cmp['test']} {fmt.pvalue(cmp['p_value'])}"
    digits = dict(spec.row_deltas)
    if key not in digits:
        return fmt.DASH
    if digits[key] is None:  # a rate: percentage points
        return fmt.pts(trained[key] - base[key])
    if isinstance(base.get(key), float) and isinstance(trained.get(key), float):
        return f"{trained[key] - base[key]:+.{digits[key]}f}"
    return fmt.DASH


def _headline(task: str, r: dict[str, Any]) -> str:
    cmp = r["comparison"]
    if cmp is None:
        return f"Not compared: {r['base']['reason_not_compared']}."
    n = cmp["n"]
    what = {"improvement": "is better than", "regression": "is worse than"}.get(cmp["verdict"])
    test = f"{cmp['test']}, {fmt.pvalue(cmp['p_value'])}, n = {n} paired samples"
    if what is None:
        return f"No detectable difference between the trained model and its base ({test})."
    return f"The trained model {what} its base ({test})."


def _result(r: dict[str, Any]) -> list[str]:
    task, metrics, cmp = r["task"], r["metrics"], r["comparison"]
    trained = metrics["trained"]
    base = metrics["base"]
    rows = []
    metric_rows = task_spec(task).metric_rows
    base_rows = dict((k, v) for k, _, v in metric_rows(base)) if base else {}
    for key, label, value in metric_rows(trained):
        delta = _delta(task, key, base, trained, cmp) if base else fmt.DASH
        rows.append([label, base_rows.get(key, fmt.DASH), value, delta])
    table = md_table(["metric", "base", "trained", "Δ trained − base (95% CI, test)"], rows)
    return ["## Result", "", _headline(task, r), "", table, ""]


def _differences(r: dict[str, Any]) -> list[str]:
    cmp, task = r["comparison"], r["task"]
    if cmp is None:
        return []
    key = cmp["score"]
    rows = [s for s in r["samples"] if s["base"][key] != s["trained"][key]]
    if cmp["kind"] != "binary":
        rows.sort(key=lambda s: -abs(float(s["trained"][key]) - float(s["base"][key])))
    sentence, headers, table = task_spec(task).differences(rows, cmp, key)
    table = table[:MAX_ROWS]
    out = ["## Per-sample differences", "", sentence]
    if table:
        more = len(rows) - len(table)
        out += ["", md_table(headers, table)]
        out += [f"\n_{more} more in the JSON results._"] if more > 0 else []
    return [*out, ""]


def _proof(r: dict[str, Any]) -> list[str]:
    p = r["proof"]
    lp, dp = p["loader_probe"], p["data_probe"]
    if lp["available"]:
        verdict = "changed" if lp["changed"] else "did **not** change"
        loader = (
            f"- Loader probe (fixed 4-token input before vs after applying the checkpoint): the "
            f"checkpoint {verdict} the logits, max |Δlogit| = {lp['max_abs_diff']:.3g} "
            f"(threshold {p['atol']:g})."
        )
    else:
        loader = f"- Loader probe: {lp['note'] or 'not available'}."
    lines = ["## Proof that the checkpoint changed the model", "", loader]
    if dp.get("available"):
        lines.append(
            f"- Data probe (last-position logits of the prompt of `{dp['sample']}`, base vs "
            f"trained): max |Δlogit| = {dp['max_abs_diff']:.3g}"
            f" ({'changed' if dp['changed'] else 'identical'})."
        )
    elif r["base"]["evaluated"] is False:
        lines.append("- Data probe: no base evaluated, nothing to compare.")
    return [*lines, ""]


def _loader(r: dict[str, Any]) -> list[str]:
    t, b, lr = r["trained"], r["base"], r["loader"]
    lines = ["## Loader report", "", f"- Source: `{t['source']}` ({t['origin']})"]
    if t["reference"]:
        lines.append(f"- W&B reference: `{t['reference']}`")
    if t["metadata"]:
        meta = ", ".join(f"{k}={fmt.value(v)}" for k, v in sorted(t["metadata"].items()))
        lines.append(f"- Artifact metadata: {fmt.cell_text(meta, 300)}")
    if t["tried"]:
        lines.append(f"- Local copies looked for: {'; '.join(t['tried'])}")
    lines += [
        f"- Loaded: `{lr['path']}`",
        f"- Detected format: **{lr['format']}**, because {lr['reason']}",
        f"- Base model: `{b['spec']}` ({b['origin']})" if b["spec"] else "- Base model: none known",
    ]
    lines += [f"- Note: {n}" for n in b["notes"]]
    if lr["hyperparameters"]:
        hp = ", ".join(f"{k}={fmt.value(v)}" for k, v in sorted(lr["hyperparameters"].items()))
        lines.append(f"- Hyperparameters: {fmt.cell_text(hp, 400)}")
    if lr["files"]:
        lines.append(f"- Files: {', '.join(f'`{f}`' for f in lr['files'])}")
    lines += [f"- Loader note: {n}" for n in lr["notes"]]
    lines += [f"- **Warning**: {w}" for w in r["warnings"]]
    rows = [
        [group, *(str(len(kr[k])) for k in ("matched", "missing", "unexpected", "mismatched"))]
        for group, kr in sorted(lr["keys"].items())
    ]
    if rows:
        lines += [
            "",
            md_table(
                ["tensors", "matched", "missing", "unexpected", "shape-mismatched"],
                rows,
                right=(1, 2, 3, 4),
            ),
        ]
    return [*lines, ""]


def _setup(r: dict[str, Any]) -> list[str]:
    d, g = r["data"], r["generation"]
    lines = [
        "## Setup",
        "",
        f"- Task: `{r['task']}` ({r['task_reason']})",
        f"- Data: `{d['path']}`, {d['selection']}; base and trained scored on the same samples",
    ]
    if g:
        how = (
            "greedy"
            if g["greedy"]
            else f"sampling, temperature {g['temperature']:g}, top_p {g['top_p']:g}, seed {g['seed']} (sample j of item i: torch seed + 1000003·i + j)"
        )
        stop = f"; stop sequences {', '.join(repr(s) for s in g['stop'])}" if g["stop"] else ""
        lines.append(
            f"- Generation: {how}, at most {g['max_new_tokens']} new tokens, {g['samples_per_task']} sample(s) per item{stop}"
        )
    lines += task_spec(r["task"]).setup_lines(r)
    att = r["options"].get("attention")
    if att:
        how = "applied to both models" if att["applied"] else "not applicable (not a harness model)"
        lines.append(f"- Attention: {att['mode']} ({att['impl']}) from {att['origin']}; {how}")
    # sorted: the same line whether rendered in the run or from the (sorted-keys) JSON file
    opts = {k: v for k, v in sorted(r["options"].items()) if v is not None and k != "attention"}
    lines.append(f"- Device: {r['device']}, weights {r['dtype']}; options: {fmt.assignment(opts)}")
    lines.append(
        f"- Tokenizers: trained {r['trained']['tokenizer']}; base {r['base']['tokenizer'] or fmt.DASH}"
    )
    lines += _execution(r.get("execution") or {})
    return [*lines, ""]


def _execution(e: dict[str, Any]) -> list[str]:
    """The batch size and the result cache: where it is and what each side found in it."""
    if not e:
        return []
    cache = e.get("cache") or {}
    if cache.get("path") is None:
        where = "result cache off (--no_cache)"
    else:
        sides = [
            f"{side} {c['hits']} cached, {c['misses']} computed"
            for side in ("base", "trained")
            if (c := cache.get(side)) is not None
        ]
        where = f"result cache `{cache['path']}` ({'; '.join(sides)})"
    return [f"- Execution: batch size {e.get('batch_size')}; {where}"]


def _timings(r: dict[str, Any]) -> list[str]:
    t = r["timings"]
    names = [
        ("fetch_s", "fetch (W&B)"),
        ("load_base_s", "load: base model"),
        ("load_trained_s", "load: trained checkpoint (loader probe included)"),
        ("probe_s", "probe: data probe, both models"),
        ("evaluation_s", "evaluation, both models"),
    ]
    rows = [[label, fmt.num(t.get(k), 2)] for k, label in names if t.get(k) is not None]
    if not t.get("fetch_s"):
        rows = rows[1:]
    return [
        "## Timings",
        "",
        md_table(["phase", "seconds"], rows, right=(1,)),
        "",
        "_Report writing and the total are in the JSON results (`timings`)._",
        "",
    ]


def _provenance(r: dict[str, Any]) -> list[str]:
    p = r["provenance"]
    commit = p.get("git_commit") or "unknown"
    dirty = " (uncommitted changes)" if p.get("git_dirty") else ""
    pk = p.get("packages") or {}
    packages = ", ".join(f"{k} {v}" for k, v in sorted(pk.items()) if v)
    return [
        "## Provenance",
        "",
        f"- Code: `{commit}`{dirty}",
        f"- Python {p.get('python')}, {packages}",
        f"- Device: {p.get('device_name') or fmt.DASH}; CUDA {p.get('cuda') or 'none'}; host {p.get('hostname')}",
        f"- Command: `{' '.join(r['command'])}`",
        "",
    ]


def _banner(r: dict[str, Any]) -> list[str]:
    if not r["proof"]["unchanged"]:
        return []
    lp = r["proof"]["loader_probe"]
    how = (
        f"the loader's probe found max |Δlogit| = {lp['max_abs_diff']:.3g}"
        if lp["available"]
        else "the data probe found identical logits"
    )
    allowed = r["options"].get("allow_unchanged")
    status = "allowed by --allow_unchanged" if allowed else f"exit status {r['exit_status']}"
    return [
        f"> **{UNCHANGED_TITLE}.** Applying the checkpoint changed nothing ({how}): its trained "
        "weights are not in use, so every number below is the base model's. Check the format, the "
        f"key report and the base model below ({status}).",
        "",
    ]


def render(r: dict[str, Any]) -> str:
    """The report for ``BenchmarkResults.to_dict()``."""
    name = r["trained"]["reference"] or r["trained"]["source"]
    title = (
        f"# Benchmark: `{name}` vs its base" if r["base"]["evaluated"] else f"# Benchmark: `{name}`"
    )
    lines = [
        title,
        "",
        "_Written by `benchmark` from its JSON results beside this file; the same results give the same file._",
        "",
    ]
    for part in (_banner, _result, _differences, _proof, _loader, _setup, _timings, _provenance):
        lines += part(r)
    return "\n".join(lines).rstrip() + "\n"
