// Plotly views: loss and validation curves, accuracy per cell and per axis, memory per phase.
"use strict";
(function () {
  const data = R.data;
  const VISIBLE = 12; // traces shown at first; the rest are one legend click away
  const MAX_BARS = 100; // cells per per-cell chart; the table holds them all
  function top(cells, key, keep) { // the MAX_BARS cells with the highest key (and all kept), in store order
    if (cells.length <= MAX_BARS) return cells;
    const kept = cells.filter(keep);
    const ranked = cells.filter((c) => !keep(c)).sort((a, b) => (key(b) ?? -1) - (key(a) ?? -1));
    const chosen = new Set([...kept, ...ranked.slice(0, Math.max(0, MAX_BARS - kept.length))]);
    return cells.filter((c) => chosen.has(c));
  }
  const layout = (extra) => Object.assign({ margin: { l: 60, r: 20, t: 40, b: 50 }, hovermode: "closest",
    legend: { orientation: "v" }, font: { size: 12 } }, extra);

  function curveTraces(xBy) {
    const loss = [], val = [], skipped = [];
    data.cells.forEach((cell, i) => {
      const c = cell.curve;
      const scale = xBy === "samples" ? c.samples_per_step : 1;
      if (!scale) { if (c.step.length) skipped.push(cell.id); return; }
      const visible = i < VISIBLE ? true : "legendonly";
      const name = R.cellLabel(cell);
      const line = { color: R.COLOURS[i % R.COLOURS.length] };
      if (c.step.length) loss.push({ x: c.step.map((s) => s * scale), y: c.loss, name, legendgroup: cell.id,
        mode: "lines", type: "scatter", visible, meta: cell.id, line, hovertemplate: `${cell.id}<br>%{x}: loss %{y:.4f}<extra></extra>` });
      if (c.val.step.length) val.push({ x: c.val.step.map((s) => s * scale), y: c.val.exact_match.map((v) => 100 * v), name,
        legendgroup: cell.id, showlegend: !c.step.length, mode: "lines+markers", type: "scatter", visible, meta: cell.id, line, marker: line,
        xaxis: "x2", yaxis: "y2", hovertemplate: `${cell.id}<br>%{x}: val exact match %{y:.1f}%<extra></extra>` });
    });
    return { loss, val, skipped };
  }
  function drawCurves(div, note, xBy) {
    const { loss, val, skipped } = curveTraces(xBy);
    const xTitle = xBy === "samples" ? "training samples seen" : "optimizer step";
    const l = layout({ height: val.length ? 760 : 520, legend: { orientation: "h", y: -0.18, yanchor: "top" }, title: { text: "Training loss" + (val.length ? " and validation exact match" : "") },
      xaxis: { title: { text: xTitle }, anchor: "y" }, yaxis: { title: { text: "loss" }, domain: val.length ? [0.45, 1] : [0, 1] } });
    if (val.length) Object.assign(l, { xaxis2: { title: { text: xTitle }, anchor: "y2", matches: "x" },
      yaxis2: { title: { text: "val exact match, %" }, domain: [0, 0.33] } });
    Plotly.react(div, [...loss, ...val], l, R.PLOT_CONFIG);
    div.dataset.traces = String(loss.length + val.length);
    note.textContent = (skipped.length ? `Not shown by samples (samples per step unknown): ${skipped.join(", ")}. ` : "") +
      (loss.length > VISIBLE ? `${loss.length} cells: the first ${VISIBLE} are shown, click a legend entry to toggle one (double-click: only it).` :
        "Click a legend entry to toggle a cell (double-click: only it); drag to zoom, double-click the plot to reset.");
  }
  R.addView({
    id: "curves", title: "Curves",
    render(view) {
      const div = R.el("div", { id: "curves-plot", class: "plot" });
      const note = R.el("p", { class: "note" });
      const radio = (value, label) => R.el("label", {}, R.el("input", { type: "radio", name: "curve-x", value, checked: value === "steps",
        onchange: () => drawCurves(div, note, value) }), label);
      const all = (on) => () => Plotly.restyle(div, { visible: on ? true : "legendonly" });
      view.append(R.el("div", { class: "controls" }, "x axis: ", radio("steps", "steps"), radio("samples", "samples seen"),
        R.el("button", { text: "show all", onclick: all(true) }), R.el("button", { text: "hide all", onclick: all(false) })), div, note);
      if (!data.cells.some((c) => c.curve.step.length || c.curve.val.step.length)) { note.textContent = "No cell recorded training metrics."; return; }
      drawCurves(div, note, "steps");
    },
  });

  function cellAccuracy(div) {
    const all = data.cells.filter((c) => c.score.rate !== null);
    const scored = top(all, (c) => c.score.rate, () => false);
    const ys = scored.map((c) => R.cellLabel(c));
    const trace = { type: "scatter", mode: "markers", name: "exact match (95% Wilson interval)", y: ys,
      x: scored.map((c) => 100 * c.score.rate), customdata: scored.map((c) => c.score.text),
      marker: { color: scored.map((c) => R.STATUS_COLOURS[c.status]), size: 9 },
      error_x: { type: "data", color: "#444", symmetric: false, array: scored.map((c) => 100 * (c.score.hi - c.score.rate)),
        arrayminus: scored.map((c) => 100 * (c.score.rate - c.score.lo)) },
      hovertemplate: "%{y}<br>%{customdata}<extra></extra>" };
    const title = scored.length < all.length ? `Exact match per cell (the ${scored.length} best of ${all.length})` : "Exact match per cell";
    Plotly.react(div, [trace], layout({ title: { text: title }, height: Math.max(300, 80 + 24 * scored.length),
      xaxis: { title: { text: "exact match, %" }, range: [0, 100] }, yaxis: { automargin: true, autorange: "reversed", type: "category" },
      margin: { l: 20, r: 20, t: 40, b: 50 } }), R.PLOT_CONFIG);
    div.dataset.traces = "1";
  }
  function axisAccuracy(div, axis, acc) {
    const xs = acc.values;
    const seeded = Boolean(acc.seed_level);
    const ok = (seeded ? acc.seed_level : acc.pooled).map((p, i) => [p, i]).filter(([p]) => p);
    const pooled = { type: "scatter", mode: "lines+markers", x: ok.map(([, i]) => xs[i]),
      name: seeded ? "mean over seeds (95% t CI over seeds)" : "pooled (95% Wilson CI over samples)",
      y: ok.map(([p]) => 100 * p.rate), line: { color: "black", width: 3 }, marker: { size: 9 },
      customdata: ok.map(([p]) => (seeded ? `${p.seeds.length} seeds` : `${p.k}/${p.n}`)),
      hovertemplate: `%{x}: %{y:.1f}% (%{customdata})<extra>${seeded ? "mean over seeds" : "pooled"}</extra>`,
      error_y: { type: "data", symmetric: false, array: ok.map(([p]) => 100 * (p.hi - p.rate)), arrayminus: ok.map(([p]) => 100 * (p.rate - p.lo)) } };
    const series = acc.series.map((s) => {
      const byX = new Map();
      s.points.forEach((p) => byX.set(p.x, [...(byX.get(p.x) || []), p.rate]));
      const keys = [...byX.keys()].sort((a, b) => a - b);
      return { type: "scatter", mode: "lines", name: s.label, x: keys.map((k) => xs[k]), opacity: 0.6, line: { width: 1 },
        y: keys.map((k) => (100 * byX.get(k).reduce((a, b) => a + b, 0)) / byX.get(k).length), hovertemplate: `${s.label}<br>%{x}: mean %{y:.1f}%<extra></extra>` };
    });
    const points = acc.series.flatMap((s) => s.points.map((p) => ({ ...p, label: s.label })));
    const runs = { type: "scatter", mode: "markers", name: "single runs (seeds)", x: points.map((p) => xs[p.x]),
      y: points.map((p) => 100 * p.rate), text: points.map((p) => `${p.cell} (${p.label})`), marker: { color: "#888", size: 6, symbol: "circle-open" },
      hovertemplate: "%{text}<br>%{y:.1f}%<extra></extra>" };
    Plotly.react(div, [pooled, ...series, runs], layout({ title: { text: `Exact match vs ${axis}` }, height: 380,
      xaxis: { title: { text: axis }, type: "category", categoryarray: xs }, yaxis: { title: { text: "exact match, %" } } }), R.PLOT_CONFIG);
    div.dataset.traces = String(2 + series.length);
  }
  R.addView({
    id: "accuracy", title: "Accuracy",
    render(view) {
      const perCell = R.el("div", { id: "accuracy-cells", class: "plot" });
      view.append(R.el("p", { class: "note", text: "Points are coloured by outcome; bars are 95% Wilson intervals over samples. Per axis: black, with seeds the mean over seeds with its 95% t interval over seeds (run-to-run variance; each seed averaged over the other settings), without seeds the runs pooled over the other settings (sum of k and n, 95% Wilson interval over samples, no seed variance); lines, single settings of the other axes (mean over seeds); circles, each run." }), perCell);
      if (!data.cells.some((c) => c.score.rate !== null)) { perCell.textContent = "No cell was scored."; return; }
      cellAccuracy(perCell);
      const unscored = data.cells.filter((c) => c.score.rate === null);
      if (unscored.length) perCell.after(R.el("p", { class: "note", id: "accuracy-unscored",
        text: `Not scored: ${unscored.map((c) => `${c.id} (${c.status})`).join(", ")}.` }));
      for (const [axis, acc] of Object.entries(data.accuracy)) {
        const div = R.el("div", { class: "plot axis-plot", dataset: { axis } });
        view.append(div);
        axisAccuracy(div, axis, acc);
      }
    },
  });

  function memoryPlot(div) {
    const cells = top(data.cells, (c) => c.memory.train || c.memory.eval, (c) => c.status === "OOM");
    const labels = cells.map((c) => c.id);
    const names = cells.map((c) => R.cellLabel(c));
    const bar = (phase, colour) => ({ type: "bar", name: `${phase} peak`, x: labels, y: cells.map((c) => R.mib(c.memory[phase])),
      marker: { color: colour }, customdata: names, hovertemplate: `%{customdata}<br>${phase} peak %{y:.0f} MiB<extra></extra>` });
    const traces = [bar("train", "#1565c0"), bar("eval", "#90caf9")];
    const ooms = cells.filter((c) => c.status === "OOM");
    if (ooms.length) traces.push({ type: "scatter", mode: ooms.length <= 12 ? "markers+text" : "markers", name: "OOM (in use at failure)", x: ooms.map((c) => c.id),
      y: ooms.map((c) => R.mib(c.memory.oom_bytes || c.memory.budget) || 0), text: ooms.map((c) => `OOM in ${c.memory.oom_phase || "?"}`),
      textposition: "top center", marker: { color: R.STATUS_COLOURS.OOM, symbol: "x", size: 14 },
      hovertemplate: "%{x}<br>%{text} at %{y:.0f} MiB<extra></extra>" });
    const budgets = cells.map((c) => R.mib(c.memory.budget));
    if (budgets.some((b) => b)) traces.push({ type: "scatter", mode: "markers", name: "budget", x: labels, y: budgets,
      marker: { symbol: "line-ew-open", size: 60, color: "black", line: { width: 3, color: "black" } }, hovertemplate: "budget %{y:.0f} MiB<extra></extra>" });
    const title = cells.length < data.cells.length ? ` (${cells.length} of ${data.cells.length} cells: every OOM, the highest peaks)` : "";
    Plotly.react(div, traces, layout({ title: { text: `Peak memory per phase against the budget${title}` }, barmode: "group", height: 480,
      yaxis: { title: { text: "MiB" } }, xaxis: { automargin: true, type: "category", title: { text: "cell (hover for its settings)" },
        tickvals: labels, ticktext: cells.map((c) => (c.status === "completed" ? c.id : `${c.id}<br>${c.status}`)) } }), R.PLOT_CONFIG);
    div.dataset.traces = String(traces.length);
  }
  R.addView({
    id: "memory", title: "Memory",
    render(view) {
      const div = R.el("div", { id: "memory-plot", class: "plot" });
      const kinds = [...new Set(data.cells.map((c) => c.memory.kind).filter(Boolean))];
      view.append(R.el("p", { class: "note", text: `Peak memory within each phase (${kinds.join(", ") || "kind not recorded"}); an OOM cell is marked where it failed, with the bytes in use then.` }), div);
      memoryPlot(div);
    },
  });
})();
