// Shared helpers: element building (text only, never innerHTML), formatting, status colours.
"use strict";
const R = {};
R.data = JSON.parse(document.getElementById("report-data").textContent);
R.STATUS_COLOURS = {
  "completed": "#2e7d32", "time cap": "#ef6c00", "short of budget": "#f9a825",
  "OOM": "#c62828", "timeout": "#6a1b9a", "diverged": "#ad1457", "failed": "#b71c1c",
  "interrupted": "#546e7a", "damaged": "#4e342e", "not run": "#9e9e9e",
};
R.PLOT_CONFIG = { displaylogo: false, responsive: true };
// Plotly's default colour cycle, assigned per cell so a cell keeps its colour in every trace.
R.COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

R.el = function (tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

R.badge = function (status) {
  return R.el("span", {
    class: "badge", text: status, title: status,
    style: `background:${R.STATUS_COLOURS[status] || "#777"}`,
    dataset: { status },
  });
};

R.pct = (v, digits = 1) => (v === null || v === undefined ? "—" : `${(100 * v).toFixed(digits)}%`);
R.mib = (v) => (v === null || v === undefined ? null : v / 2 ** 20);
R.cellLabel = function (cell) { // "cell0: grad_accum=4, mode=causal" (a paired axis's value is already key=value)
  const axes = R.data.axes.filter((a) => (R.data.axis_values[a] || []).length > 1);
  const parts = axes.map((a) => (String(cell.axes[a]).includes("=") ? cell.axes[a] : `${a.split(".").pop()}=${cell.axes[a]}`));
  if (cell.repeat) parts.push(`repeat ${cell.repeat}`);
  return parts.length ? `${cell.id}: ${parts.join(", ")}` : cell.id;
};
// The findings' markdown, as text nodes: `code` and **bold** only.
R.inline = function (text) {
  const out = [];
  for (const part of String(text).split(/(`[^`]*`|\*\*[^*]+\*\*)/)) {
    if (!part) continue;
    if (part.startsWith("`") && part.endsWith("`") && part.length > 1) out.push(R.el("code", { text: part.slice(1, -1) }));
    else if (part.startsWith("**") && part.endsWith("**")) out.push(R.el("b", {}, R.inline(part.slice(2, -2))));
    else out.push(document.createTextNode(part));
  }
  return out;
};
R.cellById = new Map((R.data.cells || []).map((c) => [c.id, c])); // none on a benchmark page

// Views register themselves: {id, title, render(container)}; rendered on first show.
R.views = [];
R.addView = (view) => R.views.push(view);
R.showView = function (id) {};
