// Start-up: unpack Plotly (gzip, inlined), build the tabs, show the view named in the URL hash;
// the progress line and the reload toggle for a matrix that is still running.
"use strict";
(function () {
  const data = R.data;
  const RELOAD_S = 10, KEY = "reports-html-reload";
  function progress() {
    const p = data.progress, box = document.getElementById("progress");
    if (!p) { // a page of finished results (benchmark): nothing to reload
      box.append(R.el("span", { class: "small", text: `Plotly ${data.plotly_version}, inlined; this file makes no network request` }));
      return;
    }
    let on = false;
    try { on = localStorage.getItem(KEY) === "1"; } catch (e) { /* storage off: no memory of the toggle */ }
    const toggle = R.el("input", { type: "checkbox", id: "reload", checked: on, onchange: (e) => {
      try { localStorage.setItem(KEY, e.target.checked ? "1" : "0"); } catch (err) { /* see above */ }
      if (e.target.checked) schedule();
    } });
    const damaged = p.damaged ? `, ${p.damaged} damaged` : "";
    const text = p.unfinished ? `${p.finished} of ${p.cells} cells finished${damaged}; ${p.unfinished} running or not run yet` : `${p.cells} cells: ${p.finished} finished${damaged}`;
    box.append(R.el("span", { id: "progress-text", class: p.unfinished ? "running" : "", text }),
      " ", R.el("label", { title: "the runner rewrites this file after every finished cell" }, toggle, ` reload every ${RELOAD_S} s`),
      R.el("span", { class: "small", text: ` · Plotly ${data.plotly_version}, inlined; this file makes no network request` }));
    function schedule() { setTimeout(() => { if (toggle.checked) location.reload(); }, RELOAD_S * 1000); }
    if (on) schedule();
  }
  const rendered = new Map();
  function show() {
    const [id, ...rest] = location.hash.replace(/^#/, "").split(":");
    const view = R.views.find((v) => v.id === id) || R.views[0];
    for (const v of R.views) {
      document.getElementById(`view-${v.id}`).hidden = v.id !== view.id;
      document.getElementById(`tab-${v.id}`).classList.toggle("active", v.id === view.id);
    }
    const arg = rest.join(":");
    const container = document.getElementById(`view-${view.id}`);
    if (!rendered.has(view.id) || (arg && rendered.get(view.id) !== arg)) {
      container.replaceChildren();
      view.render(container, arg);
      rendered.set(view.id, arg);
    } else if (view.id === "results" && R.filterCells) { /* kept as filtered */ }
    window.dispatchEvent(new Event("resize")); // plots drawn while hidden take their width now
    document.body.dataset.view = view.id;
  }
  async function unpackPlotly() {
    const b64 = document.getElementById("plotly-gz").textContent.trim();
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    const script = document.createElement("script");
    script.textContent = await new Response(stream).text();
    document.head.append(script);
  }
  async function start() {
    progress();
    const tabs = document.getElementById("tabs"), main = document.getElementById("views");
    for (const v of R.views) {
      tabs.append(R.el("a", { id: `tab-${v.id}`, href: `#${v.id}`, text: v.title }));
      main.append(R.el("section", { id: `view-${v.id}`, class: "view", hidden: true }));
    }
    await unpackPlotly();
    window.addEventListener("hashchange", show);
    show();
    document.body.dataset.ready = "1";
  }
  start().catch((err) => {
    document.getElementById("views").prepend(R.el("p", { class: "problem", text: `The page could not start: ${err}` }));
    throw err;
  });
})();
