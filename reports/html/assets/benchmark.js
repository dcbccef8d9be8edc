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
        R.el("p", { class: "note", text: `Task ${data.task}; data ${data.data.path}, ${data.data.selection}; base and trained scored on the same samples.` }),
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
        ...words.proof.map((line) => R.el("div", { class: `finding ${data.unchanged ? "kind-outcomes" : ""}` }, R.el("p", {}, R.inline(line)))));
      if (words.warnings.length) view.append(R.el("h3", { text: "Warnings" }),
        ...words.warnings.map((w) => R.el("div", { class: "finding kind-outcomes" }, R.el("p", {}, R.inline(w)))));
    },
  });

  const withImages = Object.keys(data.images).length > 0;
  const hasAnswer = data.binary && data.differing.some((s) => s.answer !== null && s.answer !== undefined);
  const hasOutput = data.differing.some((s) => (s.trained && s.trained.output !== null) || (s.base && s.base.output !== null));
  function scoreText(side) {
    if (!side) return "—";
    if (data.binary) return side.output === null ? (side.right ? "✓" : "✗") : side.output === "" ? "(empty)" : side.output;
    return typeof side.score === "number" ? side.score.toFixed(4) : String(side.score);
  }
  function table(rows, id) {
    if (!rows.length) return R.el("p", { class: "note", id, text: "none" });
    const continuous = !data.binary;
    const head = [withImages ? "image" : null, "sample", "prompt", hasAnswer ? "answer" : null,
      ...(data.binary || !hasOutput ? [] : ["base output", "trained output"]),
      data.binary ? "base says" : `base ${data.score_key}`, data.binary ? "trained says" : `trained ${data.score_key}`, continuous ? "Δ trained − base" : null].filter((h) => h);
    return R.el("div", { class: "sample-box" }, R.el("table", { class: "samples", id },
      R.el("thead", {}, R.el("tr", {}, head.map((h) => R.el("th", { text: h })))),
      R.el("tbody", {}, rows.map((s) => {
        const img = data.images[s.id];
        const cell = (side) => R.el("td", { class: `mono text ${data.binary && side ? (side.right ? "right" : "wrong") : ""}`, text: scoreText(side) });
        return R.el("tr", { dataset: { sample: s.id } },
          withImages ? R.el("td", {}, img ? R.el("img", { src: img, alt: s.answer || s.id, class: "thumb" }) : R.el("span", { class: "noimg", text: "no image" })) : null,
          R.el("td", { class: "mono", text: s.id }), R.el("td", { class: "mono text", text: s.prompt.trim() || "—" }),
          hasAnswer ? R.el("td", { class: "mono", text: s.answer === null || s.answer === undefined ? "—" : s.answer }) : null,
          ...(data.binary || !hasOutput ? [] : [R.el("td", { class: "mono text", text: s.base ? s.base.output || "" : "—" }), R.el("td", { class: "mono text", text: s.trained.output || "" })]),
          cell(s.base), cell(s.trained),
          continuous ? R.el("td", { class: "num", text: s.delta === null ? "—" : `${s.delta > 0 ? "+" : ""}${s.delta.toFixed(4)}` }) : null);
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
  R.addView({
    id: "samples", title: "Differences",
    render(view) {
      const more = data.differing_total - data.differing.length;
      const note = more > 0 ? ` The page lists the first ${data.differing.length}; ${more} more are in the JSON results.` : "";
      if (!cmp) {
        view.append(R.el("h2", { text: data.binary ? "Errors of the trained model" : "Per-sample scores of the trained model" }),
          R.el("p", { class: "note", text: `Not compared with a base.${note}` }), table(data.differing, "differences"));
        return;
      }
      view.append(R.el("h2", { text: "Per-sample differences, base vs trained" }), R.el("p", {}, R.inline(words.differences)),
        R.el("p", { class: "note", text: `The samples whose per-sample score (${data.score_key}) differs between the two models, as the markdown report lists them.${note}` }));
      if (data.binary) {
        const onlyT = data.differing.filter((s) => s.trained.right), onlyB = data.differing.filter((s) => s.base.right);
        view.append(R.el("div", { class: "side-by-side" },
          R.el("div", {}, R.el("h3", { id: "only-trained", dataset: { count: onlyT.length }, text: `Right only with the trained model: ${onlyT.length}` }), table(onlyT, "table-only-trained")),
          R.el("div", {}, R.el("h3", { id: "only-base", dataset: { count: onlyB.length }, text: `Right only with the base: ${onlyB.length}` }), table(onlyB, "table-only-base"))));
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
