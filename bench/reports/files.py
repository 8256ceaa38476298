"""The leaderboard's files: LEADERBOARD.md, leaderboard.json and leaderboard.csv.

``leaderboard.json`` rows keep the keys other tools read (predictor, test_set,
answered, total, mae, mae_ci95, rmsle, hit_rate, status, params, run_dir); the
rest (rank, ``ranked`` and ``not_ranked``: the reason a run is not ranked, the
paired comparison with the leader with its p-values, break-downs, chart links)
are additions, and ``ranking`` records the rule the rows were ranked by. Nothing
in the files depends on the clock or the machine, so the same answers give the
same bytes: every float is published to ``format.PUBLISHED_DIGITS`` significant
digits (``format.published``), rows are compared in that form, times per item
are measured on the machine that ran, so a row whose published figures are
unchanged keeps the time already published (``keep_timings``), and run folders
are named relative to the results dir. Every file is written
atomically, and only when its content changes (a clone's ``make run`` leaves
``git status`` clean).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from bench import metrics, standing
from bench.escape import csv_cell
from bench.fsutil import atomic_write_json, atomic_write_text
from bench.reports.collect import Entry
from bench.reports.format import published
from bench.reports.layout import Drawn
from bench.reports.markdown import link, markdown

MARKDOWN = "LEADERBOARD.md"
JSON = "leaderboard.json"
CSV = "leaderboard.csv"
NESTED = ("mae_ci95", "vs_leader", "by_price_band", "by_category", "charts", "params")


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """Flat columns only: intervals split, the leader comparison and bands spread out."""
    flat = {k: v for k, v in row.items() if k not in NESTED}
    flat["params"] = ", ".join(f"{k}={v}" for k, v in (row.get("params") or {}).items())
    ci = row.get("mae_ci95") or [None, None]
    flat.update(mae_ci95_lo=ci[0], mae_ci95_hi=ci[1])
    vs = row.get("vs_leader") or {}
    diff_ci = vs.get("diff_ci95") or [None, None]
    flat.update(vs_leader_diff=vs.get("diff"), vs_leader_lo=diff_ci[0],
                vs_leader_hi=diff_ci[1], vs_leader_p=vs.get("p_value"),
                vs_leader_p_holm=vs.get("p_holm"), vs_leader_verdict=vs.get("verdict"))
    for group in row.get("by_price_band") or []:
        flat[f"mae_{_column(group['group'])}"] = group["mae"]
    return flat


def _column(band: str) -> str:
    """``under $50`` -> ``under_50``, ``$50-200`` -> ``50_200``."""
    return re.sub(r"[^a-z0-9]+", "_", band.lower()).strip("_")


def ranking_rule(min_answered: float) -> dict[str, Any]:
    """The rule the rows were ranked by, as leaderboard.json records it."""
    return {"min_answered": min_answered, "asked_every_item": True,
            "status": standing.COMPLETE, "paired_test": "sign-flip",
            "correction": "holm", "alpha": metrics.ALPHA}


# What decides that a row's figures are unchanged: the same answers give the same values.
SAME_FIGURES = ("predictor", "test_set", "status", "answered", "total", "mae", "mae_ci95",
                "rmsle", "hit_rate", "cost_usd", "input_tokens", "output_tokens")


def keep_timings(entries: list[Entry], previous: Path) -> None:
    """Give each entry whose published figures equal its row in the ``previous``
    leaderboard.json that row's time per item: a rerun elsewhere (other speed, same
    answers) is no new content. A changed row publishes the time measured with its
    answers. Both sides are compared as published (``format.published``), so a
    last-bit difference below the published digits is no change."""
    try:
        rows = json.loads(previous.read_text(encoding="utf-8"))["rows"]
        before = {(r["test_set"], r["predictor"]): r for r in rows if isinstance(r, dict)}
    except (OSError, ValueError, KeyError, TypeError):
        return
    for e in entries:
        old = before.get((e.test_set, e.predictor))
        if old is None or "seconds_per_item" not in old:
            continue
        row = published(e.row())
        if all(row.get(k) == published(old.get(k)) for k in SAME_FIGURES):
            e.keep_seconds_per_item(old["seconds_per_item"])


def write(results_dir: Path, entries: list[Entry], drawn: Drawn | None = None,
          unchanged: list[Path] | None = None,
          min_answered: float = standing.MIN_ANSWERED) -> list[Path]:
    """LEADERBOARD.md, leaderboard.json and leaderboard.csv in ``results_dir``; those
    whose content did not change are left alone and added to ``unchanged``.
    ``min_answered``: the ranking rule's minimum share, recorded in the json."""
    rows = [published(e.row()) for e in entries]
    if drawn:
        for row, e in zip(rows, entries, strict=True):
            paths = drawn.predictors.get((e.test_set, e.predictor))
            row["charts"] = ({"scatter": link(paths.scatter, results_dir),
                              "running": link(paths.running, results_dir)} if paths else None)
    md_path, json_path, csv_path = (results_dir / n for n in (MARKDOWN, JSON, CSV))
    same = unchanged if unchanged is not None else []
    if not atomic_write_text(md_path, markdown(entries, drawn, results_dir, min_answered),
                             root=results_dir):
        same.append(md_path)
    document: dict[str, Any] = {"rows": rows, "ranking": ranking_rule(min_answered)}
    if drawn:
        document["charts"] = {ts: {"mae": link(p, results_dir)} for ts, p in drawn.mae.items()}
    if not atomic_write_json(json_path, document, root=results_dir):
        same.append(json_path)
    flat = [{k: csv_cell(v) for k, v in _csv_row(r).items()} for r in rows]
    columns = list(dict.fromkeys(k for r in flat for k in r)) or ["predictor"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    if not atomic_write_text(csv_path, buffer.getvalue(), root=results_dir):
        same.append(csv_path)
    return [md_path, json_path, csv_path]
