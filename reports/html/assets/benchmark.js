// The benchmark page's views (reports/html/benchmark_page.py): base vs trained with the task's
// metric and interval, the comparison's test and verdict, the per-sample differences, the report.
"use strict";
(function () {
  const data = R.data, words = data.words, cmp = data.comparison;
  const LEVELS = { "improvement": "improvement", "regression": "regression", "no detectable difference": "same" };

  function yRange(pts) { // a rate on 0-100%; a number on its intervals; a margin so no marker is cut
    const lo = data.plot.rate ? 0 : Math.min(...pts.map((p) => p.lo)), hi = data.plot.rate ? 1 : Math.max(...pts.map((p) => p.hi));
    const pad = 0.06 * (hi - lo || 1);
    return [lo - pad, hi + pad];
  }
  R.addView({
    id: "results", title: "Results",
    render(view) {
      if (data.unchanged) view.append(R.el("p", { class: "banner problem", id: "unchanged" },
        R.el("b", { text: "UNCHANGED: the \"trained\" model's logits equal the base model's." }),
        " Every number below is the base model's; see the proof under Findings."));
      view.append(R.el("p", { id: "headline" }, R.inline(words.headline)),
        R.el("p", { class: "note", text: `Task ${data.task}; data ${data.data.path}, ${data.data.selection}${cmp ? "; base and trained scored on the same samples" : ""}.` }),
        R.el("div", { class: "scroll" }, R.el("table", { id: "benchmark-table" },
          R.el("thead", {}, R.el("tr", {}, words.headers.map((h) => R.el("th", { text: h })))),
          R.el("tbody", {}, words.rows.map((row) => R.el("tr", { dataset: { metric: row[0] } },
            row.map((v, i) => R.el("td", { class: i ? "num" : "" }, R.inline(v)))))))));
      if (!data.plot || !data.plot.points.length) return;
      const div = R.el("div", { id: "score-plot", class: "plot" });
      view.append(R.el("h3", { text: `${data.plot.metric} per model, with its 95% interval` }), div);
      const pts = data.plot.points;
      Plotly.newPlot(div, [{
        type: "scatter", mode: "markers", name: data.plot.metric, x: pts.map((p) => p.side), y: pts.map((p) => p.value),
        marker: { size: 12, color: pts.map((p) => (p.side === "trained" ? R.COLOURS[1] : R.COLOURS[0])) },
        error_y: { type: "data", symmetric: false, color: "#555", thickness: 2, width: 10, array: pts.map((p) => p.hi - p.value), arrayminus: pts.map((p) => p.value - p.lo) },
        hovertemplate: "%{x}: %{y:.4g}<extra></extra>",
      }], { margin: { t: 10, r: 20, b: 40, l: 70 }, height: 320, width: 520, xaxis: { range: [-0.6, pts.length - 0.4] },
        yaxis: { title: { text: data.plot.metric }, zeroline: false, tickformat: data.plot.rate ? ".0%" : "", range: yRange(pts) } }, R.PLOT_CONFIG);
    },
  });

  R.addView({
    id: "findings", title: "Findings",
    render(view) {
      view.append(R.el("p", { class: "note", text: "The comparison as the markdown report states it: a difference is called an improvement or a regression only when its paired test gives p < 0.05." }));
      const verdict = cmp ? cmp.verdict : "not compared";
      const level = LEVELS[verdict] || "same";
      const stats = cmp ? [
        R.el("span", { class: "level", text: cmp.test }),
        R.el("span", { class: "level", text: `p ${cmp.p_value < 0.001 ? "< 0.001" : `= ${cmp.p_value.toFixed(3)}`}` }),
        R.el("span", { class: "level", text: `n = ${cmp.n}` }),
      ] : [];
      view.append(R.el("h3", { text: "Base vs trained" }),
        R.el("div", { class: "finding kind-accuracy", id: "verdict", dataset: { verdict } },
          R.el("p", {}, R.el("span", { class: `level level-${level}`, text: verdict }), stats, R.inline(words.headline)),
          words.differences ? R.el("p", {}, R.inline(words.differences)) : null));
      view.append(R.el("h3", { text: "Proof that the checkpoint changed the model" }),
        ...words.proof.map((line) => R.el("div", { class: `finding ${data.unchanged ? "alert" : ""}` }, R.el("p", {}, R.inline(line)))));
      if (words.warnings.length) view.append(R.el("h3", { text: "Warnings" }),
        ...words.warnings.map((w) => R.el("div", { class: "finding alert" }, R.el("p", {}, R.inline(w)))));
    },
  });

  const allRows = [...data.differing, ...data.errors];
  const withImages = Object.keys(data.images).length > 0;
  const hasAnswer = data.binary && allRows.some((s) => s.answer !== null && s.answer !== undefined);
  const hasOutput = allRows.some((s) => (s.trained && s.trained.output !== null) || (s.base && s.base.output !== null));
  const sides = cmp ? ["base", "trained"] : ["trained"];
  function scoreText(side) {
    if (!side) return "—";
    if (data.binary) return side.output === null ? (side.right ? "✓" : "✗") : side.output === "" ? "(empty)" : side.output;
    return typeof side.score === "number" ? side.score.toFixed(4) : String(side.score);
  }
  // One row per sample: its image, id, prompt, answer, then per model its output (pass/fail: the
  // output coloured right or wrong; a number: the output, if any, and the score), then the change.
  function table(rows, id) {
    if (!rows.length) return R.el("p", { class: "note", id, text: "none" });
    const continuous = !data.binary, outputs = continuous && hasOutput;
    const head = [withImages ? "image" : null, "sample", "prompt", hasAnswer ? "answer" : null,
      ...(outputs ? sides.map((x) => `${x} output`) : []),
      ...sides.map((x) => (data.binary ? `${x} says` : `${x} ${data.score_key}`)),
      continuous && cmp ? "Δ trained − base" : null].filter((h) => h);
    const scoreCell = (side) => R.el("td", { class: `mono text ${data.binary && side ? (side.right ? "right" : "wrong") : ""}`, text: scoreText(side) });
    return R.el("div", { class: "sample-box" }, R.el("table", { class: "samples wide", id },
      R.el("thead", {}, R.el("tr", {}, head.map((h) => R.el("th", { text: h })))),
      R.el("tbody", {}, rows.map((s) => {
        const img = data.images[s.id];
        return R.el("tr", { dataset: { sample: s.id } },
          withImages ? R.el("td", {}, img ? R.el("img", { src: img, alt: s.answer || s.id, class: "thumb" }) : R.el("span", { class: "noimg", text: "no image" })) : null,
          R.el("td", { class: "mono", text: s.id }), R.el("td", { class: "mono text", text: s.prompt.trim() || "—" }),
          hasAnswer ? R.el("td", { class: "mono", text: s.answer === null || s.answer === undefined ? "—" : s.answer }) : null,
          ...(outputs ? sides.map((x) => R.el("td", { class: "mono text", text: s[x] ? s[x].output || "" : "—" })) : []),
          ...sides.map((x) => scoreCell(s[x])),
          continuous && cmp ? R.el("td", { class: "num", text: s.delta === null ? "—" : `${s.delta > 0 ? "+" : ""}${s.delta.toFixed(4)}` }) : null);
      }))));
  }
  function scatter(view) {
    const rows = data.differing.filter((s) => s.base);
    if (!rows.length) return;
    const div = R.el("div", { id: "per-sample-plot", class: "plot" });
    view.append(div);
    const xs = rows.map((s) => s.base.score), ys = rows.map((s) => s.trained.score);
    const lo = Math.min(...xs, ...ys), hi = Math.max(...xs, ...ys);
    Plotly.newPlot(div, [
      { type: "scatter", mode: "markers", name: "samples", x: xs, y: ys, text: rows.map((s) => s.id), hovertemplate: "%{text}: base %{x:.4f}, trained %{y:.4f}<extra></extra>" },
      { type: "scatter", mode: "lines", name: "equal", x: [lo, hi], y: [lo, hi], line: { dash: "dot", color: "#999" }, hoverinfo: "skip" },
    ], { margin: { t: 10, r: 20, b: 50, l: 60 }, height: 360, xaxis: { title: { text: `base ${data.score_key}` } }, yaxis: { title: { text: `trained ${data.score_key}` } } }, R.PLOT_CONFIG);
  }
  function more(shown, total) {
    return total > shown ? ` The page lists the first ${shown}; ${total - shown} more are in the JSON results.` : "";
  }
  function errorsPart(view) {
    const n = data.errors_total;
    const title = data.binary ? `Errors of the trained model: ${n} of ${data.n}` : "Per-sample scores of the trained model, worst first";
    view.append(R.el("h2", { id: "errors-heading", dataset: { count: n }, text: title }),
      R.el("p", { class: "note", text: `${cmp ? "" : "Not compared with a base. "}${more(data.errors.length, n)}`.trim() || null }),
      table(data.errors, "table-errors"));
  }
  R.addView({
    id: "samples", title: "Differences",
    render(view) {
      if (!cmp) { errorsPart(view); return; }
      view.append(R.el("h2", { text: "Per-sample differences, base vs trained" }), R.el("p", {}, R.inline(words.differences)),
        R.el("p", { class: "note", text: `The samples whose per-sample score (${data.score_key}) differs between the two models, as the markdown report lists them.${more(data.differing.length, data.differing_total)}` }));
      if (data.binary) {
        const onlyT = data.differing.filter((s) => s.trained.right), onlyB = data.differing.filter((s) => s.base.right);
        view.append(R.el("div", { class: "side-by-side" },
          R.el("div", {}, R.el("h3", { id: "only-trained", dataset: { count: onlyT.length }, text: `Right only with the trained model: ${onlyT.length}` }), table(onlyT, "table-only-trained")),
          R.el("div", {}, R.el("h3", { id: "only-base", dataset: { count: onlyB.length }, text: `Right only with the base: ${onlyB.length}` }), table(onlyB, "table-only-base"))));
        errorsPart(view);
      } else {
        scatter(view);
        view.append(table(data.differing, "differences"));
      }
    },
  });

  R.addView({
    id: "report", title: "Report",
    render(view) {
      view.append(R.el("p", { class: "note", text: "The markdown report written beside this page (loader report, setup, timings, provenance)." }),
        R.el("pre", { class: "markdown", text: data.markdown }));
    },
  });
})();
