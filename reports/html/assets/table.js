// The results table: sortable, filterable by axis value, outcome and text; a row opens its
// config, provenance and log tail.
"use strict";
(function () {
  const data = R.data;
  const axes = data.axes.filter((a) => (data.axis_values[a] || []).length > 1);
  const repeats = data.cells.some((c) => c.repeat);
  const columns = [
    { key: "id", title: "cell", value: (c) => c.id, text: (c) => c.id },
    ...axes.map((a) => ({ key: `axis:${a}`, title: a, value: (c) => axisRank(a, c), text: (c) => c.axes[a] })),
    ...(repeats ? [{ key: "repeat", title: "repeat", value: (c) => c.repeat, text: (c) => String(c.repeat), num: true }] : []),
    { key: "status", title: "outcome", value: (c) => data.statuses.indexOf(c.status), node: (c) => outcomeNode(c) },
    { key: "exact", title: "exact match", value: (c) => c.score.rate, text: (c) => c.score.text, num: true },
    { key: "ci", title: "95% CI", value: (c) => c.score.lo, text: (c) => c.score.ci_text, num: true },
    { key: "token_accuracy", title: "token acc", value: (c) => c.token_accuracy, text: (c) => c.texts.token_accuracy, num: true },
    { key: "cer", title: "CER", value: (c) => c.cer, text: (c) => c.texts.cer, num: true },
    { key: "peak_train", title: "peak train", value: (c) => c.memory.train, text: (c) => c.texts.peak_train, num: true },
    { key: "peak_eval", title: "peak eval", value: (c) => c.memory.eval, text: (c) => c.texts.peak_eval, num: true },
    { key: "steps_per_s", title: "steps/s", value: (c) => c.steps_per_s, text: (c) => c.texts.steps_per_s, num: true },
    { key: "wall", title: "wall", value: (c) => c.wall_s, text: (c) => c.texts.wall, num: true },
  ];
  function axisRank(axis, cell) {
    return data.axis_values[axis].indexOf(cell.axes[axis]);
  }
  function outcomeNode(cell) {
    const span = R.el("span", {}, R.badge(cell.status));
    if (cell.outcome !== cell.status) span.append(" ", R.el("span", { class: "why", text: cell.outcome }));
    return span;
  }
  const state = { sort: null, desc: false, axis: {}, statuses: new Set(data.statuses), text: "", only: null };
  let body, count;

  function compare(a, b) {
    if (!state.sort) return 0;
    const col = columns.find((c) => c.key === state.sort);
    const va = col.value(a), vb = col.value(b);
    const missing = (v) => v === null || v === undefined || Number.isNaN(v);
    if (missing(va) || missing(vb)) return missing(va) - missing(vb); // missing last, either way
    const order = va < vb ? -1 : va > vb ? 1 : 0;
    return state.desc ? -order : order;
  }
  function shown(cell) {
    if (state.only && !state.only.has(cell.id)) return false;
    if (!state.statuses.has(cell.status)) return false;
    for (const [axis, value] of Object.entries(state.axis)) if (value !== "" && cell.axes[axis] !== value) return false;
    if (state.text && !cell.id.toLowerCase().includes(state.text) && !Object.values(cell.axes).join(" ").toLowerCase().includes(state.text)) return false;
    return true;
  }
  function details(cell) {
    const pre = (title, text) => (text ? R.el("details", { open: title === "log tail" && cell.status !== "completed" },
      R.el("summary", { text: title }), R.el("pre", { text })) : null);
    return R.el("div", { class: "details" },
      R.el("p", { class: cell.problem ? "problem" : "" }, R.el("b", { text: "outcome: " }), cell.outcome),

      cell.score.scored_on ? R.el("p", { text: `scored on: ${cell.score.scored_on}` }) : null,
      R.el("p", {},
        data.predictions[cell.id] ? R.el("a", { href: `#samples:errors:${cell.id}`, text: "this cell's errors" }) : null,
        data.predictions[cell.id] ? " · " : null,
        data.predictions[cell.id] ? R.el("a", { href: `#samples:pair:${cell.id}`, text: "compare with another cell" }) : null),
      pre("config.yaml", cell.config), pre("provenance", cell.provenance), pre("log tail", cell.log));
  }
  function draw() {
    const cells = data.cells.filter(shown).sort(compare);
    body.replaceChildren();
    for (const cell of cells) {
      const row = R.el("tr", { class: `row status-${cell.status.replace(/ /g, "-")}`, dataset: { cell: cell.id, status: cell.status }, tabindex: "0" },
        columns.map((col) => R.el("td", { class: col.num ? "num" : "" }, col.node ? col.node(cell) : col.text(cell))));
      const open = R.el("tr", { class: "detail", hidden: true }, R.el("td", { colspan: columns.length }));
      const toggle = () => { // built on first open: a 1,000-cell table stays light
        if (!open.firstChild.firstChild) open.firstChild.append(details(cell));
        open.hidden = !open.hidden;
        row.classList.toggle("open", !open.hidden);
      };
      row.addEventListener("click", toggle);
      row.addEventListener("keydown", (e) => { if (e.key === "Enter") toggle(); });
      body.append(row, open);
    }
    count.textContent = `${cells.length} of ${data.cells.length} cells shown` + (state.only ? " (cells of one finding; clear to see all)" : "");
  }
  function header() {
    return R.el("tr", {}, columns.map((col) => {
      const th = R.el("th", { class: col.num ? "num" : "", dataset: { key: col.key }, title: "click to sort" }, col.title);
      th.addEventListener("click", () => {
        state.desc = state.sort === col.key ? !state.desc : false;
        state.sort = col.key;
        th.parentNode.querySelectorAll("th").forEach((t) => t.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", state.desc ? "descending" : "ascending");
        draw();
      });
      return th;
    }));
  }
  function filters() {
    const present = data.statuses.filter((s) => data.cells.some((c) => c.status === s));
    const box = R.el("div", { class: "filters" });
    box.append(R.el("input", { type: "search", id: "filter-text", placeholder: "filter cells by id or value",
      oninput: (e) => { state.text = e.target.value.trim().toLowerCase(); draw(); } }));
    for (const axis of axes) {
      const select = R.el("select", { dataset: { axis }, onchange: (e) => { state.axis[axis] = e.target.value; draw(); } },
        R.el("option", { value: "", text: `${axis}: all` }),
        data.axis_values[axis].map((v) => R.el("option", { value: v, text: v })));
      box.append(select);
    }
    for (const status of present) {
      const input = R.el("input", { type: "checkbox", checked: true, dataset: { status },
        onchange: (e) => { e.target.checked ? state.statuses.add(status) : state.statuses.delete(status); draw(); } });
      box.append(R.el("label", { class: "status-filter" }, input, R.badge(status)));
    }
    box.append(R.el("button", { id: "clear-only", text: "show all cells", onclick: () => { state.only = null; draw(); } }));
    return box;
  }
  R.filterCells = function (ids) {
    state.only = new Set(ids);
    location.hash = "#results";
    if (body) draw();
  };
  R.addView({
    id: "results", title: "Results",
    render(view) {
      body = R.el("tbody");
      count = R.el("p", { class: "count" });
      view.append(
        R.el("p", { class: "note", text: "Exact match is k/n on the scored split with a 95% Wilson interval; click a column to sort, a row to open its config, provenance and log." }),
        filters(), count,
        R.el("div", { class: "scroll" }, R.el("table", { id: "results-table" }, R.el("thead", {}, header()), body)));
      draw();
    },
  });
})();
