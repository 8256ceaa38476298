"""The live view of ``bench view``: runs in progress, refreshed as answers arrive.

``snapshot`` reads the results dir as it is now: every run whose ``run.json``
says ``running`` and whose lock a process holds (a killed run's stale
``running`` is not shown as live), with the items done of the test set, the
running mean error with its 95% interval, and the failures by reason. The
server (``bench.view``) hands it out as ``/live.json``; ``PAGE`` (``/live.html``)
asks for it every second, so a new answer shows within about a second of its
being stored. Finished runs are on the site's pages as before.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import metrics
from bench.lock import holder
from bench.store import iter_runs

REASONS = 5  # failure reasons shown per run


def snapshot(results_dir: Path) -> dict[str, Any]:
    """The runs in progress under ``results_dir``, as JSON-ready dicts."""
    runs = []
    for store in iter_runs(results_dir) if results_dir.is_dir() else ():
        info = store.run_info() if store.run_path.exists() else None
        if info is None or info.status != "running":
            continue
        who = holder(store.dir)
        if who is None:
            continue  # "running" with no writer: a killed run, not a live one
        records = store.records()
        truth = {i: r.truth for i, r in records.items() if r.truth is not None}
        scores = metrics.score(truth, {i: r.price for i, r in records.items()})
        reasons = Counter(r.error or "no answer" for r in records.values() if r.price is None)
        try:
            last = store.dir.joinpath("predictions.jsonl").stat().st_mtime
        except OSError:
            last = None
        runs.append({
            "predictor": info.predictor, "test_set": info.test_set, "run_dir": store.dir.name,
            "items": info.items, "done": len(records), "answered": scores.answered,
            "mae": scores.mae, "mae_ci95": list(scores.mae_ci95) if scores.mae_ci95 else None,
            "hit_rate": scores.hit_rate, "failed": sum(reasons.values()),
            "reasons": [[why, n] for why, n in reasons.most_common(REASONS)],
            "started_at": info.started_at, "writer": who.describe(),
            "last_answer_s": None if last is None else round(time.time() - last, 1),
        })
    runs.sort(key=lambda r: (r["test_set"] or "", r["predictor"] or ""))
    return {"runs": runs, "at": time.strftime("%H:%M:%S")}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pricer-bench: runs in progress</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/site.css"></head>
<body data-page="live"><header><nav><a href="index.html">pricer-bench leaderboard</a>
 · runs in progress</nav></header>
<main id="main"><h1>Runs in progress</h1>
<p class="intro">Refreshed every second from the results folder: items done, the mean absolute
error so far with its 95% bootstrap interval, and the items without an answer by reason.
Finished runs are on the <a href="index.html">leaderboard</a> (rebuild the site to see them:
restart <code>bench view</code>).</p>
<p id="updated">-</p>
<table id="live"><thead><tr><th>predictor</th><th>test set</th><th class="num">done</th>
<th class="num">MAE so far</th><th>95% CI</th><th class="num">hits</th>
<th>no answer (by reason)</th><th>last answer</th></tr></thead><tbody></tbody></table>
</main>
<script>
"use strict";
const money = (v) => v == null ? "-" : "$" + v.toLocaleString("en-US",
  { minimumFractionDigits: 2, maximumFractionDigits: 2 });
function cell(text, cls) { const td = document.createElement("td"); td.textContent = text;
  if (cls) td.className = cls; return td; }
async function refresh() {
  try {
    const reply = await fetch("live.json", { cache: "no-store" });
    const data = await reply.json();
    const body = document.querySelector("#live tbody");
    body.replaceChildren(...data.runs.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.run = r.run_dir; tr.dataset.done = r.done;
      tr.append(cell(r.predictor), cell(r.test_set), cell(`${r.done}/${r.items}`, "num"),
        cell(money(r.mae), "num"),
        cell(r.mae_ci95 ? `[${money(r.mae_ci95[0])}, ${money(r.mae_ci95[1])}]` : "-"),
        cell(r.hit_rate == null ? "-" : (r.hit_rate * 100).toFixed(1) + "%", "num"),
        cell(r.failed ? r.reasons.map(([why, n]) => `${n}: ${why}`).join("; ") : "-"),
        cell(r.last_answer_s == null ? "-" : `${r.last_answer_s}s ago`));
      return tr;
    }));
    if (!data.runs.length) {
      const tr = document.createElement("tr");
      const td = cell("No run in progress.");
      td.colSpan = 8; tr.append(td); body.append(tr);
    }
    document.getElementById("updated").textContent =
      `${data.runs.length} run${data.runs.length === 1 ? "" : "s"} in progress, as of ${data.at}`;
    document.body.dataset.ready = "1";
  } catch (err) {
    document.getElementById("updated").textContent = `cannot read live.json: ${err.message}`;
  }
  setTimeout(refresh, 1000);
}
refresh();
</script></body></html>
"""
