// The matrix as a grid, two axes at a time, coloured by a metric or by outcome.
"use strict";
(function () {
  const data = R.data;
  const axes = data.axes.filter((a) => (data.axis_values[a] || []).length > 1);
  const METRICS = {
    "exact match": { unit: "%", of: (cells) => pooledRate(cells) },
    "outcome": { of: (cells) => worst(cells) },
    "peak train memory": { unit: "MiB", of: (cells) => mean(cells.map((c) => R.mib(c.memory.train))) },
    "wall time": { unit: "s", of: (cells) => mean(cells.map((c) => c.wall_s)) },
  };
  function mean(values) {
    const v = values.filter((x) => x !== null && x !== undefined);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  }
  function pooledRate(cells) { // sum of k over sum of n, as the pooled accuracy
    const s = cells.filter((c) => c.score.n);
    const n = s.reduce((a, c) => a + c.score.n, 0);
    return n ? (100 * s.reduce((a, c) => a + c.score.k, 0)) / n : null;
  }
  function worst(cells) {
    return cells.length ? Math.max(...cells.map((c) => data.statuses.indexOf(c.status))) : null;
  }
  function draw(div, xAxis, yAxis, metric) {
    const xs = xAxis ? data.axis_values[xAxis] : ["all"];
    const ys = yAxis ? data.axis_values[yAxis] : ["all"];
    const z = [], text = [];
    for (const y of ys) {
      const zr = [], tr = [];
      for (const x of xs) {
        const cells = data.cells.filter((c) => (!xAxis || c.axes[xAxis] === x) && (!yAxis || c.axes[yAxis] === y));
        const v = METRICS[metric].of(cells);
        zr.push(v);
        const counts = {};
        cells.forEach((c) => (counts[c.status] = (counts[c.status] || 0) + 1));
        const what = Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(", ");
        const shown = metric === "outcome" ? (v === null ? "" : data.statuses[v]) : v === null ? "—" : `${v.toFixed(metric === "exact match" ? 1 : 0)} ${METRICS[metric].unit}`;
        tr.push(`${shown}<br>${what || "no cell"}`);
      }
      z.push(zr); text.push(tr);
    }
    const trace = { type: "heatmap", x: xs.map(String), y: ys.map(String), z, text, texttemplate: "%{text}", hoverinfo: "text", xgap: 2, ygap: 2 };
    if (metric === "outcome") {
      const n = data.statuses.length - 1;
      Object.assign(trace, { zmin: 0, zmax: n, showscale: false,
        colorscale: data.statuses.map((s, i) => [i / n, R.STATUS_COLOURS[s]]) });
    } else Object.assign(trace, { colorscale: metric === "exact match" ? "Viridis" : "Cividis", colorbar: { title: { text: METRICS[metric].unit } } });
    Plotly.react(div, [trace], { title: { text: `${metric}: ${yAxis || "—"} × ${xAxis || "—"}` }, height: Math.max(320, 140 + 70 * ys.length),
      xaxis: { title: { text: xAxis || "" }, type: "category" }, yaxis: { title: { text: yAxis || "" }, type: "category", automargin: true },
      margin: { l: 40, r: 20, t: 50, b: 60 } }, R.PLOT_CONFIG);
    div.dataset.traces = "1";
  }
  R.addView({
    id: "grid", title: "Grid",
    render(view) {
      const div = R.el("div", { id: "grid-plot", class: "plot" });
      const pick = (name, init, options) => R.el("select", { id: name, onchange: update },
        options.map((o) => R.el("option", { value: o, text: o || "(none)", selected: o === init })));
      const xSel = pick("grid-x", axes[0] || "", ["", ...axes]);
      const ySel = pick("grid-y", axes[1] || "", ["", ...axes]);
      const mSel = pick("grid-metric", "exact match", Object.keys(METRICS));
      function update() { draw(div, xSel.value, ySel.value, mSel.value); }
      view.append(R.el("div", { class: "controls" }, "columns: ", xSel, " rows: ", ySel, " colour: ", mSel),
        R.el("p", { class: "note", text: "Each square pools the cells with those two values (other axes and repeats together): exact match is the sum of k over the sum of n; outcome shows the worst outcome among them, with the counts." }), div);
      update();
    },
  });
})();
