// Findings (linked to their cells), and the per-sample views: where two cells disagree, and
// one cell's errors, with each sample's image.
"use strict";
(function () {
  const data = R.data;
  const MAX_ITEMS = 30; // findings per section shown open, as the markdown lists; the rest fold
  const MAX_CHIPS = 12; // cell links per finding; the click filters the table to all of them
  function findingNode(f) {
    const level = f.level || null; // significant / not significant; regression / improvement / same
    const chips = f.cells.slice(0, MAX_CHIPS).map((id) => R.el("a", { href: "#results", class: "chip", text: id,
      onclick: (e) => { e.preventDefault(); R.filterCells(f.cells); } }));
    if (f.cells.length > MAX_CHIPS) chips.push(R.el("a", { href: "#results", text: `and ${f.cells.length - MAX_CHIPS} more`,
      onclick: (e) => { e.preventDefault(); R.filterCells(f.cells); } }));
    return R.el("div", { class: `finding kind-${f.kind}${f.alert ? " alert" : ""}`, dataset: { kind: f.kind } },
      R.el("p", {}, level ? R.el("span", { class: `level level-${level.replace(/ /g, "-")}`, text: level }) : null,
        f.p_value !== null ? R.el("span", { class: "level", text: `p ${f.p_value < 0.001 ? "< 0.001" : `= ${f.p_value.toFixed(3)}`}` }) : null,
        f.runs > 1 ? R.el("span", { class: "level", text: `${f.runs} runs per side` }) : null, R.inline(f.text)),
      f.cells.length ? R.el("p", { class: "cells" }, "cells: ", chips) : null);
  }
  R.addView({
    id: "findings", title: "Findings",
    render(view) {
      view.append(R.el("p", { class: "note", text: data.findings_note }));
      const sections = new Map();
      for (const f of data.findings) sections.set(f.section, [...(sections.get(f.section) || []), f]);
      for (const [section, items] of sections) {
        view.append(R.el("h3", { text: `${section} (${items.length})` }), ...items.slice(0, MAX_ITEMS).map(findingNode));
        if (items.length > MAX_ITEMS) view.append(R.el("details", {}, R.el("summary", { text: `${items.length - MAX_ITEMS} more` }),
          items.slice(MAX_ITEMS).map(findingNode)));
      }
      view.append(R.el("h3", { text: data.recommendations_title || "Recommendations" }), R.el("ol", {}, data.recommendations.map((r) => R.el("li", {}, R.inline(r)))));
    },
  });

  const scored = data.cells.filter((c) => data.predictions[c.id]);
  function thumb(sample) {
    const uri = data.images[sample.id];
    return uri ? R.el("img", { src: uri, alt: sample.answer, class: "thumb" }) : R.el("span", { class: "noimg", text: "no image" });
  }
  function predText(v) { return v === 1 ? "✓" : v === null || v === undefined ? "not scored" : v === "" ? "(empty)" : v; }
  function sampleTable(rows, cells) {
    if (!rows.length) return R.el("p", { class: "note", text: "none" });
    return R.el("div", { class: "sample-box" }, R.el("table", { class: "samples" },
      R.el("thead", {}, R.el("tr", {}, R.el("th", { text: "image" }), R.el("th", { text: "sample" }), R.el("th", { text: "answer" }),
        cells.map((c) => R.el("th", { text: `${c.id} read` })))),
      R.el("tbody", {}, rows.map((i) => {
        const s = data.samples[i];
        return R.el("tr", { dataset: { sample: s.id } }, R.el("td", {}, thumb(s)), R.el("td", { text: s.id }), R.el("td", { class: "mono", text: s.answer }),
          cells.map((c) => { const v = data.predictions[c.id][i]; return R.el("td", { class: `mono ${v === 1 ? "right" : "wrong"}`, text: predText(v) }); }));
      }))));
  }
  function pick(id, init, onchange) {
    return R.el("select", { id, onchange }, scored.map((c) => R.el("option", { value: c.id, text: R.cellLabel(c), selected: c.id === init })));
  }
  function imageNote(n) {
    if (!Object.keys(data.images).length) return "No image is inlined: the scored split's files were not found where the cells' data settings point (data.test_path, or the captcha cache under data.cache_dir) on the machine that wrote this page.";
    return `${n} of these samples have no inlined image: the page inlines at most ${data.max_images}, the samples the cells disagree on first.`;
  }
  function pairView(box, a, b) {
    const pa = data.predictions[a.id], pb = data.predictions[b.id];
    const onlyA = [], onlyB = [];
    data.samples.forEach((_, i) => {
      if (pa[i] === null || pb[i] === null) return; // compared on the samples both scored
      if (pa[i] === 1 && pb[i] !== 1) onlyA.push(i);
      if (pb[i] === 1 && pa[i] !== 1) onlyB.push(i);
    });
    const missing = (list) => list.filter((i) => !data.images[data.samples[i].id]).length;
    box.replaceChildren(R.el("div", { class: "side-by-side" },
      R.el("div", {}, R.el("h3", { id: "only-a", dataset: { count: onlyA.length }, text: `Right only with ${a.id}: ${onlyA.length}` }), sampleTable(onlyA, [a, b])),
      R.el("div", {}, R.el("h3", { id: "only-b", dataset: { count: onlyB.length }, text: `Right only with ${b.id}: ${onlyB.length}` }), sampleTable(onlyB, [a, b]))),
      ...(missing([...onlyA, ...onlyB]) ? [R.el("p", { class: "note", text: imageNote(missing([...onlyA, ...onlyB])) })] : []));
  }
  function errorView(box, c) {
    const p = data.predictions[c.id];
    const rows = data.samples.map((_, i) => i).filter((i) => p[i] !== null && p[i] !== 1);
    box.replaceChildren(R.el("h3", { id: "errors-title", dataset: { count: rows.length }, text: `Errors of ${c.id}: ${rows.length} of ${p.filter((v) => v !== null).length}` }), sampleTable(rows, [c]));
  }
  R.addView({
    id: "samples", title: "Disagreements",
    render(view, arg) {
      if (scored.length === 0) { view.append(R.el("p", { text: "No cell stored per-sample predictions (predictions.jsonl)." })); return; }
      const [mode, cellId] = (arg || "").split(":");
      const pair = data.pair || [];
      const first = cellId && R.cellById.has(cellId) && data.predictions[cellId] ? cellId : pair[0] || scored[0].id;
      const second = (!cellId && pair[1]) || (scored.find((c) => c.id !== first) || scored[0]).id;
      const pairBox = R.el("div", { id: "pair" }), errBox = R.el("div", { id: "errors" });
      const aSel = pick("pair-a", first, () => pairView(pairBox, R.cellById.get(aSel.value), R.cellById.get(bSel.value)));
      const bSel = pick("pair-b", second, () => pairView(pairBox, R.cellById.get(aSel.value), R.cellById.get(bSel.value)));
      const eSel = pick("errors-cell", first, () => errorView(errBox, R.cellById.get(eSel.value)));
      view.append(R.el("h2", { text: "Where two cells disagree" }), R.el("div", { class: "controls" }, "cell A: ", aSel, " cell B: ", bSel),
        R.el("p", { class: "note", text: "Held-out samples that exactly one of the two cells read right (samples both scored)." }), pairBox,
        R.el("h2", { id: "errors-heading", text: "One cell's errors" }), R.el("div", { class: "controls" }, "cell: ", eSel), errBox);
      pairView(pairBox, R.cellById.get(first), R.cellById.get(second));
      errorView(errBox, R.cellById.get(first));
      if (mode === "errors") document.getElementById("errors-heading").scrollIntoView();
    },
  });
})();
