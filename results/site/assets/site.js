/* pricer-bench site: renders each page from the data files written by `bench site`.
 * Data files are scripts calling bench.put(key, data), so the pages work from file://
 * as well as over HTTP. Every page state lives in the URL hash: a permalink reopens it.
 * Charts: Vega-Lite templates (made with Altair) drawn by vega-embed (assets/vega.js), whose
 * bundle declares many globals: hence this one closure. */
(() => {
"use strict";

const bench = (() => {
  const store = new Map();
  const waiting = new Map();
  function put(key, data) {
    store.set(key, data);
    const w = waiting.get(key);
    if (w) { waiting.delete(key); w.resolve(data); }
  }
  function load(key) {
    if (store.has(key)) return Promise.resolve(store.get(key));
    if (waiting.has(key)) return waiting.get(key).promise;
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    waiting.set(key, { promise, resolve });
    const tag = document.createElement("script");
    tag.src = key;
    tag.onerror = () => { waiting.delete(key); reject(new Error(`missing data file ${key}`)); };
    document.head.appendChild(tag);
    return promise;
  }
  return { put, load, store };
})();
window.bench = bench;  // the data files call bench.put; all else stays in this closure


// -- formatting (as LEADERBOARD.md writes figures) ----------------------------------------

// The one rounding rule of every figure, the same as `fixed` in bench/reports/format.py:
// the number's shortest decimal form (String(v), the digits Python's repr shows too),
// rounded half to even. Intl.NumberFormat (half up) and toFixed (the binary value) differ.
function fixed(v, places, commas) {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "nan" : v < 0 ? "-inf" : "inf";
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(Math.abs(v)));
  const frac = m[2] || "";
  const digits = m[1] + frac;
  const shift = Number(m[3] || 0) - frac.length + places;
  let n;
  if (shift >= 0) {
    n = BigInt(digits + "0".repeat(shift));
  } else {
    const keep = digits.length + shift;
    n = BigInt(keep > 0 ? digits.slice(0, keep) : "0");
    const next = keep >= 0 ? digits[keep] : "0";
    const tie = next === "5" && !/[1-9]/.test(digits.slice(keep + 1));
    if (next > "5" || (next === "5" && !tie) || (tie && n % 2n === 1n)) n += 1n;
  }
  const text = n.toString().padStart(places + 1, "0");
  let whole = places ? text.slice(0, -places) : text;
  if (commas) whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (v < 0 && n !== 0n ? "-" : "") + whole + (places ? "." + text.slice(-places) : "");
}
const dollars = (text, plus) => (text[0] === "-" ? "-$" + text.slice(1) : plus + "$" + text);
const money = (v) => (v == null ? "-" : dollars(fixed(v, 2, true), ""));
const signedMoney = (v) => dollars(fixed(v, 2, true), "+");
const percent = (v) => (v == null ? "-" : fixed(v * 100, 1) + "%");
const number = (v) => (v == null ? "-" : fixed(v, 2));
const cost = (v) => (v == null ? "-" : v > 0 && v < 1 ? "$" + fixed(v, 4, true) : money(v));
const perItem = (v) => (v == null ? "-" : v < 0.01 ? "<0.01s" : fixed(v, 2, true) + "s");
// Chart tooltips show these texts (`<key>_text`), never Vega's own number format.
const withMoney = (point, keys) => Object.assign(point, Object.fromEntries(
  keys.map((k) => [`${k}_text`, money(point[k])])));
// Read by tests/test_board_text.py, which checks them against bench/reports/format.py.
bench.format = { fixed, money, signedMoney, percent, number, cost, perItem };
const interval = (ci) => (ci ? `[${money(ci[0])}, ${money(ci[1])}]` : "-");
const pValue = (v) => (v == null ? "-" : v < 0.001 ? "<0.001" : fixed(v, 3));  // as format.p_value
const pairedText = (p) => (p && p.diff != null && p.diff_ci95
  ? `${signedMoney(p.diff)} [${signedMoney(p.diff_ci95[0])}, ${signedMoney(p.diff_ci95[1])}]`
  : null);
const BANDS = { g: "green", o: "orange", r: "red" };
let KINDS = {};  // kind -> { label, colour }: bench/kinds.py, by way of data/index.js
const kindLabel = (k) => (KINDS[k] ? KINDS[k].label : k);
const kindColour = (k) => (KINDS[k] ? KINDS[k].colour : (KINDS.custom || {}).colour || "#999");

// -- DOM helpers --------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
const main = () => document.getElementById("main");

// -- state in the URL hash ----------------------------------------------------------------

function getState() {
  return Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
}
function link(page, state) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) if (v != null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${page}#${s}` : page;
}
let rerender = () => {};
function setState(patch) {
  const next = { ...getState(), ...patch };
  for (const k of Object.keys(next)) if (next[k] == null || next[k] === "") delete next[k];
  const q = new URLSearchParams(next).toString();
  history.replaceState(null, "", q ? "#" + q : location.pathname + location.search);
  rerender();
}
window.addEventListener("hashchange", () => rerender());

// -- shared pieces ------------------------------------------------------------------------

function testSetOf(index, state) {
  const sets = index.test_sets;
  return sets.find((t) => t.name === state.ts) || sets[0];
}

function testSetPicker(index, ts) {
  const holder = document.getElementById("test-set");
  holder.replaceChildren();
  if (index.test_sets.length < 2) { holder.append(` · test set ${ts.name}`); return; }
  const select = el("select", { id: "ts-select", "aria-label": "test set",
    onchange: (e) => { location.href = link("index.html", { ts: e.target.value }); } },
    index.test_sets.map((t) => el("option", { value: t.name, selected: t.name === ts.name },
      `${t.name} (${t.runs} runs, ${t.items} items)`)));
  holder.append(" · test set ", select);
}

function sortable(headers, sortKey, onSort) {
  // headers: [[key, label, numeric]]; sortKey: "mae" or "-mae"
  const desc = sortKey.startsWith("-");
  const key = desc ? sortKey.slice(1) : sortKey;
  return el("tr", {}, headers.map(([k, label, numeric]) => {
    if (!k) return el("th", {}, label);
    const mark = k === key ? (desc ? " ▼" : " ▲") : "";
    // The whole cell sorts: the button (for the keyboard) passes its click up to the cell.
    return el("th", { class: numeric ? "num sortable" : "sortable", "aria-sort": k === key ? (desc ? "descending" : "ascending") : null,
      onclick: () => onSort(k === key && !desc ? "-" + k : k) },
      el("button", { type: "button", class: "sort", dataset: { key: k } }, label + mark));
  }));
}

function compareValues(a, b) {
  if (a == null && b == null) return 0;
  if (a == null) return 1;  // missing values last, whatever the direction
  if (b == null) return -1;
  if (typeof a === "string") return a.localeCompare(b);
  return a - b;
}
function sortBy(list, sortKey, value) {
  const desc = sortKey.startsWith("-");
  const key = desc ? sortKey.slice(1) : sortKey;
  return list.slice().sort((x, y) => {
    const a = value(x, key), b = value(y, key);
    if (a == null || b == null) return compareValues(a, b);
    return desc ? compareValues(b, a) : compareValues(a, b);
  });
}

function markOnce(name) {
  if (!performance.getEntriesByName(name).length) performance.mark(name);
}

// The Vega libraries (0.9 MB) load after the tables are on screen, once per page.
let vegaLoading = null;
function vega() {
  if (!vegaLoading) {
    vegaLoading = new Promise((resolve, reject) => {
      const tag = document.createElement("script");
      tag.src = "assets/vega.js";
      tag.onload = () => resolve(window.vegaEmbed);
      tag.onerror = () => reject(new Error("missing assets/vega.js"));
      document.head.appendChild(tag);
    });
  }
  return vegaLoading;
}

// One chart a page. A re-render whose chart data are unchanged (a sort, another page of
// the table) moves the drawn chart into the new page instead of drawing it again.
let kept = null;  // { key, node, view }
function chartBox(id, key) {
  if (kept && kept.key === key && kept.node.id === id) return kept.node;
  if (kept && kept.view) kept.view.finalize();
  kept = { key, node: el("div", { class: "chart", id }), view: null };
  return kept.node;
}
async function chart(holder, spec, datasets) {
  markOnce("bench:interactive");  // the page's tables and controls are in place
  if (kept.node !== holder || kept.view) return;  // already drawn
  const embed = await vega();
  const full = { ...spec, datasets: { ...(spec.datasets || {}), ...datasets } };
  const result = await embed(holder, full, { actions: false, renderer: "canvas" });
  if (kept.node === holder) kept.view = result; else result.finalize();
  holder.dataset.drawn = "1";
}

function table(head, rows, attrs) {
  return el("table", attrs || {}, el("thead", {}, head), el("tbody", {}, rows));
}

function pager(total, page, size, onPage) {
  const pages = Math.max(1, Math.ceil(total / size));
  const p = Math.min(Math.max(1, page), pages);
  const from = total ? (p - 1) * size + 1 : 0, to = Math.min(total, p * size);
  return {
    page: p, start: (p - 1) * size, end: to,
    node: el("div", { class: "pager" },
      el("button", { type: "button", id: "prev-page", disabled: p <= 1, onclick: () => onPage(p - 1) }, "‹ previous"),
      el("span", { id: "page-info" }, ` ${from}–${to} of ${total} (page ${p} of ${pages}) `),
      el("button", { type: "button", id: "next-page", disabled: p >= pages, onclick: () => onPage(p + 1) }, "next ›")),
  };
}

function select(id, label, options, value, onChange) {
  return el("label", {}, label + " ",
    el("select", { id, onchange: (e) => onChange(e.target.value) },
      options.map(([v, text]) => el("option", { value: v, selected: v === (value || "") }, text))));
}

function tsBase(ts) { return `data/${ts.slug}`; }

// -- leaderboard --------------------------------------------------------------------------

const BOARD_COLUMNS = [
  ["rank", "rank", true], ["predictor", "predictor", false], ["kind", "kind", false],
  ["answered", "answered", true], ["mae", "MAE", true], ["ci", "95% CI", true],
  ["vs", "vs #1 (95% CI)", true], ["p", "p", true], ["holm", "Holm", false],
  ["rmsle", "RMSLE", true], ["hit_rate", "hits", true],
  ["cost_usd", "cost", true], ["seconds_per_item", "time/item", true],
];
function boardValue(row, key) {
  if (key === "rank") return row.ranked ? row.rank : null;  // the runs not ranked go last
  if (key === "vs") return row.vs_leader ? row.vs_leader.diff : (row.mae == null ? null : 0);
  if (key === "p") return row.vs_leader ? row.vs_leader.p_value : null;
  if (key === "holm") return row.vs_leader ? row.vs_leader.verdict : null;
  if (key === "kind") return kindLabel(row.kind);
  if (key === "ci") return row.mae_ci95 ? row.mae_ci95[0] : null;
  return row[key];
}

async function leaderboardPage(index) {
  const state = getState();
  const ts = testSetOf(index, state);
  testSetPicker(index, ts);
  const [board, specs] = await Promise.all([
    bench.load(`${tsBase(ts)}/leaderboard.js`), bench.load("data/specs.js")]);
  const sortKey = state.sort || "rank";
  const kind = state.kind || "";
  const origin = state.origin || "";  // "" | "recorded" | "here"
  const shown = sortBy(board.rows.filter((r) => (!kind || r.kind === kind)
    && (!origin || (origin === "recorded") === Boolean(r.recorded))), sortKey, boardValue);
  const kinds = [...new Set(board.rows.map((r) => r.kind))].sort();
  const rows = shown.map((r) => el("tr", { dataset: { predictor: r.predictor }, class: r.ranked ? null : "unranked" },
    el("td", { class: "num", title: r.not_ranked }, r.ranked ? r.rank : "not ranked"),
    el("td", {}, el("a", { href: link("predictor.html", { ts: ts.name, p: r.predictor }) }, r.predictor),
      statusMark(r)),
    el("td", { dataset: { col: "kind", kind: r.kind } }, kindLabel(r.kind),
      r.recorded ? el("span", { class: "badge", title: "replayed from a published run" }, "recorded") : null),
    el("td", { class: "num" }, `${r.answered}/${r.total}`),
    el("td", { class: "num", dataset: { col: "mae", value: r.mae } }, money(r.mae)),
    el("td", { dataset: { col: "mae_ci95" } }, interval(r.mae_ci95)),
    el("td", { dataset: { col: "vs" } }, versus(r, ts)),
    el("td", { class: "num", dataset: { col: "p" } }, pValue(r.vs_leader && r.vs_leader.p_value)),
    el("td", { dataset: { col: "holm" } }, (r.vs_leader && r.vs_leader.verdict) || "-"),
    el("td", { class: "num", dataset: { col: "rmsle", value: r.rmsle } }, number(r.rmsle)),
    el("td", { class: "num", dataset: { col: "hit_rate", value: r.hit_rate } }, percent(r.hit_rate)),
    el("td", { class: "num" }, cost(r.cost_usd)),
    el("td", { class: "num" }, perItem(r.seconds_per_item))));
  const filter = select("kind-filter", "kind", [["", "all kinds"], ...kinds.map((k) => [k, kindLabel(k)])],
    kind, (v) => setState({ kind: v }));
  const originFilter = select("origin-filter", "runs", [["", "all runs"], ["recorded", "recorded"],
    ["here", "run here"]], origin, (v) => setState({ origin: v }));
  const names = board.rows.map((r) => r.predictor);
  const a = el("select", { id: "cmp-a", "aria-label": "predictor A" }, names.map((n, i) => el("option", { value: n, selected: i === 0 }, n)));
  const b = el("select", { id: "cmp-b", "aria-label": "predictor B" }, names.map((n, i) => el("option", { value: n, selected: i === 1 }, n)));
  const go = el("button", { type: "button", id: "cmp-go",
    onclick: () => { location.href = link("compare.html", { ts: ts.name, a: a.value, b: b.value }); } }, "compare");
  const maeChart = chartBox("mae-chart", JSON.stringify([ts.name, kind]));
  main().replaceChildren(
    el("h1", {}, `Leaderboard: ${ts.name}`),
    el("p", { class: "intro" }, "Mean absolute error in dollars (lower is better) over the items each predictor answered, " +
      "with its 95% bootstrap interval. vs #1: the paired difference with the leader (the best ranked run) on the items both answered, " +
      "95% paired bootstrap interval; tied when it includes zero. p: the p-value of a paired sign-flip test of that difference; " +
      "Holm: the verdict at the 5% level corrected for the number of runs compared with #1. " +
      "Hits: error under $40 or under 20% of the price. " +
      `Ranked: runs asked every item that answered at least ${share(board.min_answered)} of them; the others follow, not ranked, ` +
      "with the reason (partial: asked only part of the test set; incomplete: killed or interrupted; failed: its items kept failing). " +
      "Click a column to sort; a predictor for every item it priced."),
    el("div", { class: "controls" }, filter, " ", originFilter, el("span", { id: "row-count" }, ` ${shown.length} of ${board.rows.length} runs`)),
    table(sortable(BOARD_COLUMNS, sortKey, (s) => setState({ sort: s })), rows, { id: "leaderboard" }),
    notRankedList(shown),
    el("p", { class: "controls" }, "Compare ", a, " with ", b, " ", go),
    el("h2", {}, "Mean absolute error"), maeChart,
    el("h2", {}, "By true price"), groupTable(shown, "by_price_band", "price-bands"),
    el("h2", {}, "By category"), groupTable(shown, "by_category", "categories"),
    el("h2", {}, "The cost of accuracy"),
    el("p", {}, "Every complete run with a known cost: error against cost per 1,000 items (what the run spent, " +
      "an estimate at list prices for a recorded run, $0 for models with no API). Ringed: no other run is both cheaper and more accurate."),
    costChart(board.rows), costTable(board.rows),
    el("h2", {}, "Products that fool everyone"),
    el("p", {}, "Missed (red band: off by $80 and 40% or more) by the most predictors, then by the largest median error."),
    hardestTable(board.hardest, ts, board.rows.length));
  const data = shown.filter((r) => r.ranked && r.mae != null).map((r) => withMoney({ predictor: r.predictor, kind: r.kind,
    mae: r.mae, lo: r.mae_ci95 ? r.mae_ci95[0] : r.mae, hi: r.mae_ci95 ? r.mae_ci95[1] : r.mae }, ["mae", "lo", "hi"]));
  const mae = { ...specs.mae, height: { step: 18 } };
  await chart(maeChart, mae, { rows: data });
}

function share(v) { return v == null ? "the minimum share" : `${+(v * 100).toFixed(4)}%`; }

function statusMark(r) {
  return r.status && r.status !== "complete" ? [" ", el("strong", { class: "status" }, r.status)] : null;
}

function notRankedList(rows) {
  const others = rows.filter((r) => !r.ranked);
  if (!others.length) return null;
  return el("div", { id: "not-ranked" }, el("p", {}, `Not ranked (${others.length}):`),
    el("ul", {}, others.map((r) => el("li", {}, el("code", {}, r.predictor), `: ${r.not_ranked}`))));
}

// What is known of a recorded run's system (bench/systems.py), as a short list.
const FACTS = [["organisation", "organisation"], ["model", "model"], ["size", "size"], ["date", "date"],
  ["prompt", "prompt"], ["training_rows", "training rows"], ["cost_per_1k_usd", "cost per 1,000 items"],
  ["cost_basis", "cost basis"], ["source", "source"]];
function systemFacts(r) {
  const s = r.system;
  if (!s || !s.recorded) return document.createDocumentFragment();  // nothing to show
  const shown = FACTS.filter(([k]) => s[k] != null && s[k] !== "");
  return el("dl", { class: "facts", id: "system" },
    el("dt", {}, "recorded run of"), el("dd", {}, `${kindLabel(r.kind)}: replayed from a published notebook`),
    shown.flatMap(([k, label]) => [el("dt", {}, label),
      el("dd", { dataset: { fact: k } }, k === "cost_per_1k_usd" ? cost(s[k]) : String(s[k]))]));
}

// A log-scale template with its axes fitted to the data (the template spans every price).
function fitted(spec, values) {
  const v = values.filter((x) => x > 0);
  if (!v.length) return spec;
  const lo = Math.max(0.01, Math.min(...v) / 1.25), hi = Math.max(...v) * 1.25;
  const out = JSON.parse(JSON.stringify(spec));
  (function walk(node) {
    if (!node || typeof node !== "object") return;
    if (node.scale && node.scale.type === "log") node.scale = { ...node.scale, domain: [lo, hi], nice: false };
    Object.values(node).forEach(walk);
  })(out);
  return out;
}

// -- the cost of accuracy (frontier marks computed by bench/reports/cost.py) -------------

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) node.setAttribute(k, v);
  for (const c of children.flat()) if (c != null) node.append(c);
  return node;
}

function costChart(rows) {
  const pts = rows.filter((r) => r.status === "complete" && r.mae != null && r.cost_per_1k_usd != null);
  if (!pts.length) return el("p", { class: "note", id: "cost-chart" }, "No run has a known cost.");
  const W = 720, H = 340, L = 64, R = 170, T = 12, B = 40;
  const f = (c) => Math.log10(1 + c / 0.01);  // symmetric log: $0 sits at the left edge
  const xMax = f(Math.max(...pts.map((p) => p.cost_per_1k_usd), 1));
  const lo = Math.min(...pts.map((p) => p.mae)), hi = Math.max(...pts.map((p) => p.mae));
  const pad = (hi - lo) * 0.08 || 1;
  const x = (c) => L + (W - L - R) * f(c) / xMax;
  const y = (m) => T + (H - T - B) * (hi + pad - m) / (hi - lo + 2 * pad);
  const ticks = [0, 0.01, 0.1, 1, 10, 100, 1000].filter((c) => f(c) <= xMax + 1e-9);
  const edge = pts.filter((p) => p.cost_frontier).sort((a, b) => a.cost_per_1k_usd - b.cost_per_1k_usd);
  const path = edge.map((p, i) => (i ? `H${x(p.cost_per_1k_usd)}V${y(p.mae)}` : `M${x(p.cost_per_1k_usd)},${y(p.mae)}`)).join("");
  return el("div", { class: "wide" }, svg("svg", { id: "cost-chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": "mean absolute error against cost per 1,000 items" },
    svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#888" }),
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#888" }),
    ticks.map((c) => svg("text", { x: x(c), y: H - B + 14, "text-anchor": "middle", "font-size": 11 }, cost(c))),
    [lo, (lo + hi) / 2, hi].map((m) => svg("text", { x: L - 6, y: y(m) + 4, "text-anchor": "end", "font-size": 11 }, money(m))),
    svg("text", { x: (W - R + L) / 2, y: H - 6, "text-anchor": "middle", "font-size": 11 }, "cost per 1,000 items (symmetric log)"),
    path ? svg("path", { d: path, fill: "none", stroke: "#111", "stroke-dasharray": "4 3" }) : null,
    pts.map((p) => svg("circle", { cx: x(p.cost_per_1k_usd), cy: y(p.mae), r: p.cost_frontier ? 6 : 4,
      fill: kindColour(p.kind), stroke: p.cost_frontier ? "#111" : "none", "stroke-width": 1.5,
      "data-predictor": p.predictor, "data-frontier": p.cost_frontier ? "1" : "0" },
      svg("title", {}, `${p.predictor}: ${money(p.mae)} at ${cost(p.cost_per_1k_usd)} per 1,000 items`))),
    edge.map((p) => svg("text", { x: x(p.cost_per_1k_usd) + 8, y: y(p.mae) - 6, "font-size": 10 }, p.predictor))));
}

function costTable(rows) {
  const pts = rows.filter((r) => r.status === "complete" && r.mae != null)
    .sort((a, b) => (a.cost_per_1k_usd == null) - (b.cost_per_1k_usd == null) || (a.cost_per_1k_usd || 0) - (b.cost_per_1k_usd || 0) || a.mae - b.mae);
  const head = el("tr", {}, ["predictor", "kind", "MAE", "cost / 1,000 items", "time / item", "frontier"].map((h) => el("th", {}, h)));
  return el("div", { class: "wide" }, table(head, pts.map((r) => el("tr", { dataset: { predictor: r.predictor, frontier: r.cost_frontier ? "1" : "0" } },
    el("td", {}, r.cost_frontier || r.time_frontier ? el("strong", {}, r.predictor) : r.predictor),
    el("td", {}, kindLabel(r.kind)), el("td", { class: "num" }, money(r.mae)),
    el("td", { class: "num", title: r.cost_basis || "" }, r.cost_per_1k_usd == null ? "unknown" : cost(r.cost_per_1k_usd)),
    el("td", { class: "num" }, perItem(r.time_per_item_s)),
    el("td", {}, [r.cost_frontier ? "cost" : null, r.time_frontier ? "time" : null].filter(Boolean).join(", ") || "-"))),
  { id: "cost-table" }));
}

function versus(r, ts) {
  const p = r.vs_leader;
  if (!p) return r.mae == null ? "-" : "leader";
  const text = pairedText(p);
  if (!text) return "no shared items";
  const a = el("a", { href: link("compare.html", { ts: ts.name, a: r.predictor, b: p.leader }) }, text);
  return p.tied ? el("span", {}, a, " ", el("strong", { class: "tied" }, "tied")) : a;
}

function groupTable(rows, key, id) {
  const scored = rows.filter((r) => r[key] && r[key].length);
  if (!scored.length) return el("p", { class: "note" }, key === "by_category"
    ? "No categories: the test rows were not found when the site was built (pass --data-dir)." : "-");
  const names = [], sizes = {};
  for (const r of scored) for (const g of r[key]) {
    if (!(g.group in sizes)) names.push(g.group);
    sizes[g.group] = Math.max(sizes[g.group] || 0, g.items);
  }
  const label = (n) => n.replaceAll("_", " ");
  const head = el("tr", {}, el("th", {}, "predictor"), names.map((n) => el("th", { class: "num" }, `${label(n)} (${sizes[n]})`)));
  const by = scored.map((r) => Object.fromEntries(r[key].map((g) => [g.group, g])));
  const span = Object.fromEntries(names.map((n) => {  // each column's best and worst MAE
    const v = by.map((b) => (b[n] ? b[n].mae : null)).filter((x) => x != null);
    return [n, v.length ? [Math.min(...v), Math.max(...v)] : null];
  }));
  const cell = (g, n) => {
    if (!g || g.mae == null) return el("td", { class: "num" }, "-");
    const [lo, hi] = span[n];
    const share = hi > lo ? (g.mae - lo) / (hi - lo) : 0;  // 0 best .. 1 worst: shaded red
    const best = g.mae === lo;
    return el("td", { class: best ? "num best" : "num", dataset: best ? { best: "1" } : null,
      style: `background: rgba(208, 52, 44, ${(0.35 * share).toFixed(3)})`,
      title: best ? "best in this column" : null }, money(g.mae));
  };
  const body = scored.map((r, i) => el("tr", {}, el("td", {}, r.predictor), names.map((n) => cell(by[i][n], n))));
  return el("div", { class: "wide" }, table(head, body, { id }));
}

function hardestTable(hardest, ts, runs) {
  const head = el("tr", {}, ["item", "product", "category", "truth", "median error", "missed by"].map((h) => el("th", {}, h)));
  return table(head, hardest.map((h) => el("tr", {},
    el("td", {}, el("a", { href: link("item.html", { ts: ts.name, id: h.id }) }, `#${h.id}`)),
    el("td", {}, h.title), el("td", {}, h.category || "-"), el("td", { class: "num" }, money(h.truth)),
    el("td", { class: "num" }, money(h.median_error)), el("td", { class: "num" }, `${h.missed_by} of ${runs}`))),
  { id: "hardest" });
}

// -- predictor ----------------------------------------------------------------------------

const PAGE_SIZE = 100;
const ITEM_COLUMNS = [["id", "item", true], ["title", "product", false], ["category", "category", false],
  ["truth", "truth", true], ["guess", "guess", true], ["error", "error", true], ["band", "band", false]];
const BAND_ORDER = { g: 0, o: 1, r: 2 };

function predictorRows(items, pred) {
  return items.id.map((id, k) => ({
    k, id, title: items.title[k], category: items.category[k], truth: items.truth[k],
    price_band: items.price_band[k], guess: pred.guess[k], error: pred.error[k], band: pred.band[k],
    asked: pred.asked[k], reason: pred.reason[k], raw: pred.raw ? pred.raw[k] : null,
  }));
}

function itemValue(row, key) {
  if (key === "band") return row.band == null ? null : BAND_ORDER[row.band];
  if (key === "reply") return row.guess == null ? (row.asked ? row.reason || "no answer" : "never asked") : row.raw;
  return row[key];
}

function filterItems(rows, state) {
  const q = (state.q || "").trim().toLowerCase();
  return rows.filter((r) => (!state.cat || r.category === state.cat)
    && (!state.band || r.price_band === state.band)
    && (state.miss !== "1" || (r.band != null && r.band !== "g"))
    && (state.none !== "1" || r.guess == null)
    && (!q || r.title.toLowerCase().includes(q)));
}

async function predictorPage(index) {
  const state = getState();
  const ts = testSetOf(index, state);
  testSetPicker(index, ts);
  const base = tsBase(ts);
  const [items, specs] = await Promise.all([bench.load(`${base}/items.js`), bench.load("data/specs.js")]);
  const name = state.p || items.predictors[0];
  const at = items.predictors.indexOf(name);
  if (at < 0) { main().replaceChildren(el("p", { class: "error" }, `No stored run for ${name} on ${ts.name}.`)); return; }
  const pred = await bench.load(`${base}/p/${items.slugs[at]}.js`);
  const all = predictorRows(items, pred);
  const sortKey = state.sort || "id";
  const shown = sortBy(filterItems(all, state), sortKey, itemValue);
  const page = pager(shown.length, Number(state.page || 1), PAGE_SIZE, (p) => setState({ page: p }));
  const r = pred.row;
  const cats = [...new Set(items.category.filter((c) => c))].sort();
  const bands = [...new Set(items.price_band.filter((c) => c))];
  const controls = el("div", { class: "controls", id: "filters" },
    select("cat-filter", "category", [["", "all"], ...cats.map((c) => [c, c])], state.cat, (v) => setState({ cat: v, page: null })),
    select("band-filter", "true price", [["", "all"], ...bands.map((c) => [c, c])], state.band, (v) => setState({ band: v, page: null })),
    el("label", {}, el("input", { type: "checkbox", id: "miss-filter", checked: state.miss === "1",
      onchange: (e) => setState({ miss: e.target.checked ? "1" : null, page: null }) }), " misses only (not a hit)"),
    el("label", {}, el("input", { type: "checkbox", id: "none-filter", checked: state.none === "1",
      onchange: (e) => setState({ none: e.target.checked ? "1" : null, page: null }) }), " no answers only"),
    el("label", {}, "search titles ", el("input", { type: "search", id: "search", value: state.q || "",
      oninput: (e) => typing(() => setState({ q: e.target.value || null, page: null })),
      onchange: (e) => {  // Enter or leaving the box: at once (not again for what is shown)
        if ((e.target.value || "") !== (getState().q || "")) typing(() => setState({ q: e.target.value || null, page: null }), 0);
      } })));
  const head = sortable([...ITEM_COLUMNS, ["reply", pred.raw ? "reply / why no answer" : "why no answer", false]],
    sortKey, (s) => setState({ sort: s, page: null }));
  const body = shown.slice(page.start, page.end).map((x) => el("tr", { dataset: { id: x.id }, class: x.band ? BANDS[x.band] : "none" },
    el("td", { class: "num" }, el("a", { href: link("item.html", { ts: ts.name, id: x.id }) }, `#${x.id}`)),
    el("td", {}, x.title), el("td", {}, x.category || "-"),
    el("td", { class: "num" }, money(x.truth)),
    el("td", { class: "num", dataset: { col: "guess", value: x.guess } }, x.guess == null ? "no answer" : money(x.guess)),
    el("td", { class: "num", dataset: { col: "error", value: x.error } }, money(x.error)),
    el("td", {}, x.band ? BANDS[x.band] : "-"),
    el("td", { class: "reply" }, x.guess == null ? (x.asked ? x.reason || "no answer" : "never asked") : (x.raw || ""))));
  const scatter = chartBox("scatter-chart", JSON.stringify([ts.name, name, state.cat, state.band,
    state.miss, state.none, state.q]));
  const vs = r.vs_leader ? [" · vs #1 ", el("a", { href: link("compare.html", { ts: ts.name, a: name, b: r.vs_leader.leader }) },
    pairedText(r.vs_leader) || "no shared items"), r.vs_leader.tied ? " (tied)" : "",
    ` · p ${pValue(r.vs_leader.p_value)}`, r.vs_leader.verdict ? ` · Holm: ${r.vs_leader.verdict}` : ""]
    : (r.mae != null && r.ranked ? " · the leader" : "");
  const place = r.ranked ? `rank ${r.rank} of ${pred.ranked_count}` : `not ranked (${r.not_ranked})`;
  const status = r.status && r.status !== "complete" ? ` · ${r.status} run` : "";
  const others = items.predictors.filter((n) => n !== name);
  const other = el("select", { id: "cmp-b", "aria-label": "compare with" }, others.map((n) => el("option", { value: n }, n)));
  main().replaceChildren(
    el("h1", {}, name),
    el("p", { class: "summary", id: "summary" }, `${kindLabel(r.kind)}${status} · ${place} · MAE `,
      el("strong", {}, money(r.mae)), ` ${interval(r.mae_ci95)} · RMSLE ${number(r.rmsle)} · hits ${percent(r.hit_rate)} · ` +
      `answered ${r.answered}/${r.total} · cost ${cost(r.cost_usd)} · time/item ${perItem(r.seconds_per_item)}`, vs),
    systemFacts(r),
    el("p", { class: "controls" }, "Compare with ", other, " ",
      el("button", { type: "button", onclick: () => { location.href = link("compare.html", { ts: ts.name, a: name, b: other.value }); } }, "compare")),
    el("h2", {}, "Truth against guess"),
    el("p", { class: "note" }, "Shows the items the filters below keep; hover a point for the product, click it for the item."),
    scatter,
    el("h2", {}, "Every item"), controls,
    el("p", { id: "item-count" }, `${shown.length} of ${all.length} items`),
    page.node,
    el("div", { class: "wide" }, table(head, body, { id: "items" })),
    el("h2", {}, "Provenance (run.json)"), provenance(pred.provenance));
  const points = shown.filter((x) => x.guess != null && x.truth != null).map((x) => withMoney({ id: x.id, title: x.title,
    truth: x.truth, guess: x.guess, error: x.error, band: BANDS[x.band], href: link("item.html", { ts: ts.name, id: x.id }) },
  ["truth", "guess", "error"]));
  await chart(scatter, fitted(specs.scatter, points.flatMap((p) => [p.truth, p.guess])), { points });
}

function provenance(info) {
  const rows = [];
  const walk = (prefix, value) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      const keys = Object.keys(value).sort();
      if (!keys.length) rows.push([prefix, "{}"]);
      for (const k of keys) walk(prefix ? `${prefix}.${k}` : k, value[k]);
    } else rows.push([prefix, value == null ? "null" : Array.isArray(value) ? JSON.stringify(value) : String(value)]);
  };
  walk("", info || {});
  return el("div", { class: "wide" }, table(el("tr", {}, el("th", {}, "field"), el("th", {}, "value")),
    rows.map(([k, v]) => el("tr", {}, el("td", {}, el("code", {}, k)), el("td", {}, v))), { id: "provenance" }));
}

// -- item ---------------------------------------------------------------------------------

async function itemPage(index) {
  const state = getState();
  const ts = testSetOf(index, state);
  testSetPicker(index, ts);
  const base = tsBase(ts);
  const items = await bench.load(`${base}/items.js`);
  const id = state.id != null ? Number(state.id) : items.id[0];
  const k = items.id.indexOf(id);
  if (k < 0) { main().replaceChildren(el("p", { class: "error" }, `No item ${state.id} in ${ts.name}.`)); return; }
  const chunk = await bench.load(`${base}/text/${Math.floor(k / items.chunk)}.js`);
  const at = k - chunk.start;
  const truth = items.truth[k];
  const guesses = items.predictors.map((name, j) => {
    const g = chunk.guess[at][j];
    const error = g == null || truth == null ? null : Math.abs(g - truth);
    return { name, kind: items.kinds[j], guess: g, error, band: chunk.band[at][j] };
  });
  const ranked = sortBy(guesses, "error", (x, key) => x[key]);
  const prev = k > 0 ? items.id[k - 1] : null, next = k < items.id.length - 1 ? items.id[k + 1] : null;
  main().replaceChildren(
    el("p", { class: "controls" },
      prev != null ? el("a", { id: "prev-item", href: link("item.html", { ts: ts.name, id: prev }) }, `‹ #${prev}`) : "",
      ` item ${k + 1} of ${items.id.length} `,
      next != null ? el("a", { id: "next-item", href: link("item.html", { ts: ts.name, id: next }) }, `#${next} ›`) : ""),
    el("h1", {}, `#${id}: ${items.title[k]}`),
    el("p", { class: "summary", id: "summary" }, `truth `, el("strong", {}, money(truth)), ` · ${items.price_band[k] || "-"}` +
      ` · ${items.category[k] || "no category"} · median error ${money(items.median_error[k])}` +
      ` · missed by ${items.missed_by[k]} of ${items.predictors.length}`),
    el("h2", {}, "Every guess, best to worst"),
    table(el("tr", {}, ["", "predictor", "kind", "guess", "error", "band"].map((h) => el("th", {}, h))),
      ranked.map((x, n) => {
        const band = x.band ? BANDS[x.band] : null;
        return el("tr", { class: band || "none", dataset: { predictor: x.name } },
          el("td", { class: "num" }, x.error == null ? "-" : n + 1),
          el("td", {}, el("a", { href: link("predictor.html", { ts: ts.name, p: x.name, q: null }) }, x.name)),
          el("td", {}, kindLabel(x.kind)),
          el("td", { class: "num", dataset: { value: x.guess } }, x.guess == null ? "no answer" : money(x.guess)),
          el("td", { class: "num" }, money(x.error)), el("td", {}, band || "-"));
      }), { id: "guesses" }),
    el("h2", {}, "What the predictors saw"),
    el("pre", { class: "product", id: "product-text" }, chunk.text[at] || "(the test rows were not at hand when the site was built)"));
}

// -- compare ------------------------------------------------------------------------------

const CMP_COLUMNS = [["id", "item", true], ["title", "product", false], ["truth", "truth", true],
  ["guess_a", "A's guess", true], ["guess_b", "B's guess", true], ["error_a", "A's error", true],
  ["error_b", "B's error", true], ["diff", "A − B error", true]];

async function comparePage(index) {
  const state = getState();
  const ts = testSetOf(index, state);
  testSetPicker(index, ts);
  const base = tsBase(ts);
  const [items, specs] = await Promise.all([bench.load(`${base}/items.js`), bench.load("data/specs.js")]);
  const names = items.predictors;
  const an = names.includes(state.a) ? state.a : names[0];
  const bn = names.includes(state.b) && state.b !== an ? state.b : names.find((n) => n !== an);
  const pick = (id, value, key) => el("select", { id, onchange: (e) => setState({ [key]: e.target.value, page: null }) },
    names.map((n) => el("option", { value: n, selected: n === value }, n)));
  const header = el("p", { class: "controls" }, "A ", pick("cmp-a", an, "a"), " against B ", pick("cmp-b", bn, "b"),
    " ", el("a", { href: link("compare.html", { ts: ts.name, a: bn, b: an }) }, "swap"));
  if (!bn) { main().replaceChildren(el("h1", {}, "Compare"), el("p", {}, "Only one predictor is stored.")); return; }
  const [pa, pb] = await Promise.all([an, bn].map((n) => bench.load(`${base}/p/${items.slugs[names.indexOf(n)]}.js`)));
  const p = pa.pairs[bn];
  const rows = items.id.map((id, k) => ({ k, id, title: items.title[k], truth: items.truth[k],
    guess_a: pa.guess[k], guess_b: pb.guess[k], error_a: pa.error[k], error_b: pb.error[k] }))
    .filter((x) => x.error_a != null && x.error_b != null)
    .map((x) => ({ ...x, diff: x.error_a - x.error_b, gap: Math.abs(x.guess_a - x.guess_b) }));
  const sortKey = state.sort || "-diff";
  const shown = sortBy(rows, sortKey, (x, key) => x[key]);
  const page = pager(shown.length, Number(state.page || 1), PAGE_SIZE, (n) => setState({ page: n }));
  const apart = rows.slice().sort((x, y) => y.gap - x.gap || x.id - y.id).slice(0, 10);
  let verdict = "no item answered by both";
  if (p && p.diff != null) verdict = p.tied ? "tied: the interval includes 0, no significant difference"
    : `${p.diff < 0 ? an : bn} is better: the interval excludes 0`;
  const itemLink = (x) => el("a", { href: link("item.html", { ts: ts.name, id: x.id }) }, `#${x.id}`);
  const against = chartBox("compare-chart", JSON.stringify([ts.name, an, bn]));
  main().replaceChildren(
    el("h1", {}, `${an} (A) against ${bn} (B)`), header,
    el("div", { class: "paired", id: "paired" },
      el("p", {}, `${p ? p.items : 0} items both answered. MAE on them: A ${money(p && p.mae_a)}, B ${money(p && p.mae_b)}.`),
      el("p", {}, "A − B: ", el("strong", { id: "paired-diff", dataset: p && p.diff != null ? { diff: p.diff, lo: p.diff_ci95[0], hi: p.diff_ci95[1] } : {} },
        p && p.diff != null ? `${signedMoney(p.diff)} per item, 95% paired bootstrap interval [${signedMoney(p.diff_ci95[0])}, ${signedMoney(p.diff_ci95[1])}]` : "-")),
      el("p", { id: "verdict" }, verdict),
      p && p.p_value != null ? el("p", { id: "p-value" }, `paired sign-flip test of A − B = 0: p ${p.p_value < 0.001 ? "< 0.001" : "= " + pValue(p.p_value)} (one comparison, uncorrected)`) : "",
      p && p.diff != null ? el("p", {}, `closer to the truth: A on ${percent(p.a_wins)} of items, B on ${percent(p.b_wins)}, equal on ${percent(p.ties)}`) : ""),
    el("h2", {}, "One against the other"),
    el("p", { class: "note", id: "compare-caption" }, specs.compare.description),
    against,
    el("h2", {}, "Where they disagree most"),
    table(el("tr", {}, ["item", "product", "truth", "A's guess", "B's guess", "apart"].map((h) => el("th", {}, h))),
      apart.map((x) => el("tr", {}, el("td", {}, itemLink(x)), el("td", {}, x.title), el("td", { class: "num" }, money(x.truth)),
        el("td", { class: "num" }, money(x.guess_a)), el("td", { class: "num" }, money(x.guess_b)), el("td", { class: "num" }, money(x.gap)))),
      { id: "disagree" }),
    el("h2", {}, "Per item"), page.node,
    el("div", { class: "wide" }, table(sortable(CMP_COLUMNS, sortKey, (s) => setState({ sort: s, page: null })),
      shown.slice(page.start, page.end).map((x) => el("tr", { dataset: { id: x.id } }, el("td", {}, itemLink(x)), el("td", {}, x.title),
        el("td", { class: "num" }, money(x.truth)), el("td", { class: "num" }, money(x.guess_a)), el("td", { class: "num" }, money(x.guess_b)),
        el("td", { class: "num" }, money(x.error_a)), el("td", { class: "num" }, money(x.error_b)),
        el("td", { class: "num", dataset: { value: x.diff } }, x.diff === 0 ? "$0.00" : signedMoney(x.diff)))), { id: "per-item" })));
  const points = rows.map((x) => withMoney({ title: x.title, truth: x.truth, guess_a: x.guess_a, guess_b: x.guess_b,
    error_a: x.error_a, error_b: x.error_b, closer: x.diff < 0 ? "A" : x.diff > 0 ? "B" : "equal",
    href: link("item.html", { ts: ts.name, id: x.id }) }, ["truth", "guess_a", "guess_b"]));
  await chart(against, specs.compare, { points });
}

// -- start --------------------------------------------------------------------------------

const PAGES = { leaderboard: leaderboardPage, predictor: predictorPage, item: itemPage, compare: comparePage };

let typingTimer = null;
function typing(then, wait = 150) {  // filter as one types, once the keys pause
  clearTimeout(typingTimer);
  typingTimer = null;
  if (wait) typingTimer = setTimeout(then, wait); else then();  // Enter: at once
}

function keptFocus() {  // the focused control, to focus again once the page is redrawn
  const a = document.activeElement;
  if (!a || !a.id || a === document.body) return () => {};
  const at = [a.selectionStart, a.selectionEnd];
  return () => {
    const again = document.getElementById(a.id);
    if (!again || again === document.activeElement) return;
    again.focus();
    if (at[0] != null && again.setSelectionRange) again.setSelectionRange(at[0], at[1]);
  };
}

function start() {
  const render = PAGES[document.body.dataset.page];
  let running = Promise.resolve();
  rerender = () => {
    const refocus = keptFocus();
    document.body.dataset.ready = "";
    running = running.then(() => bench.load("data/index.js"))
      .then((index) => { KINDS = index.kinds || {}; return render(index); })
      .then(() => {
        refocus();
        document.body.dataset.ready = "1";
        markOnce("bench:interactive");
        markOnce("bench:ready");  // charts drawn too
      })
      .catch((err) => {
        main().replaceChildren(el("p", { class: "error" }, `Cannot show this page: ${err.message}`));
        document.body.dataset.ready = "error";
      });
  };
  rerender();
}

document.addEventListener("DOMContentLoaded", start);
})();
