"""What each page needs, as plain JSON-ready dicts (no HTML here).

Per test set: the leaderboard (its rows are the ``leaderboard.json`` rows, ranked
by the same rule, whose minimum share it records),
the item list (titles, truth, price band, how badly the field missed it), one
file per predictor (every answer, its error and colour band, the raw reply,
the run's provenance, its paired comparison with every other predictor), and
the item text with every predictor's guess in chunks of ``CHUNK`` items, so a
page loads only what it shows.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from bench import breakdown, kinds, metrics
from bench.site.source import Run, TestSetRuns
from bench.store import slug

CHUNK = 250  # items per text/guesses file
HARDEST = 20  # products listed under "what fools everyone"
BAND_CODE = {"green": "g", "orange": "o", "red": "r"}


SLUG_LENGTH = 100  # characters of a name kept in its file name (limits are 255 bytes)


def slugs(names: Sequence[str]) -> dict[str, str]:
    """A file-safe, unique name for each of ``names`` (in order), short enough for
    any file system (a predictor with a 5,000-character parameter still gets a page)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = slug(name)[:SLUG_LENGTH]
        candidate, n = base, 2
        while candidate.lower() in taken:
            candidate, n = f"{base}-{n}", n + 1
        taken.add(candidate.lower())
        out[name] = candidate
    return out


def item_ids(group: TestSetRuns) -> list[int]:
    """The test set's items: its rows when at hand, else every id a run scored."""
    if group.rows:
        return sorted(group.rows)
    return sorted({i for r in group.runs for i in r.truth})


def _truth(group: TestSetRuns) -> dict[int, float]:
    truth: dict[int, float] = {}
    for r in group.runs:
        truth.update(r.truth)
    if group.rows:
        for i, row in group.rows.items():
            truth.setdefault(i, row.price)
    return truth


def _title(group: TestSetRuns, item_id: int) -> str:
    row = group.rows.get(item_id) if group.rows else None
    if row is None:
        return f"item {item_id}"
    return row.title or row.product().title


def _band(guess: float | None, truth: float | None) -> str | None:
    if guess is None or truth is None:
        return None
    return BAND_CODE[metrics.band(abs(guess - truth), truth)]


def index(groups: Sequence[TestSetRuns], ts_slugs: dict[str, str]) -> dict[str, Any]:
    return {"test_sets": [{"name": g.name, "slug": ts_slugs[g.name], "runs": len(g.runs),
                           "items": len(item_ids(g))} for g in groups],
            "kinds": {k: {"label": kinds.label(k), "colour": kinds.colour(k)}
                      for k in kinds.KINDS}}


def items(group: TestSetRuns, p_slugs: dict[str, str]) -> dict[str, Any]:
    """The item list: one column per field, items in id order."""
    ids = item_ids(group)
    truth = _truth(group)
    median, missed = [], []
    for i in ids:
        t = truth.get(i)
        errors = [abs(g - t) for r in group.runs
                  if t is not None and (g := r.answers.get(i)) is not None]
        median.append(statistics.median(errors) if errors else None)
        missed.append(sum(1 for r in group.runs if _band(r.answers.get(i), t) == "r"))
    rows = group.rows or {}
    return {
        "test_set": group.name, "chunk": CHUNK,
        "predictors": [r.predictor for r in group.runs],
        "slugs": [p_slugs[r.predictor] for r in group.runs],
        "kinds": [r.kind for r in group.runs],
        "id": ids, "title": [_title(group, i) for i in ids],
        "category": [breakdown.label(rows[i].category) if i in rows and rows[i].category
                     else None for i in ids],
        "truth": [truth.get(i) for i in ids],
        "price_band": [breakdown.price_band(truth[i]) if i in truth else None for i in ids],
        "median_error": median, "missed_by": missed,
    }


def leaderboard(group: TestSetRuns, p_slugs: dict[str, str],
                listing: dict[str, Any]) -> dict[str, Any]:
    """The ranked rows (as in leaderboard.json), break-downs and the hardest products."""
    rows = [{**r.row, "slug": p_slugs[r.predictor]} for r in group.runs]
    order = sorted((i for i, m in enumerate(listing["median_error"]) if m is not None),
                   key=lambda i: (-listing["missed_by"][i], -listing["median_error"][i],
                                  listing["id"][i]))[:HARDEST]
    hardest = [{k: listing[k][i] for k in ("id", "title", "category", "truth", "median_error",
                                            "missed_by")} for i in order]
    return {"test_set": group.name, "rows": rows, "items": len(listing["id"]),
            "hardest": hardest, "min_answered": group.min_answered}


def predictor(run: Run, group: TestSetRuns, listing: dict[str, Any],
              pairs: dict[tuple[str, str], dict[str, Any]],
              p_slugs: dict[str, str]) -> dict[str, Any]:
    """One predictor's page: every item's answer (columns in the item list's order)."""
    ids: list[int] = listing["id"]
    guess = [run.answers.get(i) for i in ids]
    truth = listing["truth"]
    error = [None if g is None or t is None else abs(g - t)
             for g, t in zip(guess, truth, strict=True)]
    out: dict[str, Any] = {
        "predictor": run.predictor, "slug": p_slugs[run.predictor], "row": run.row,
        "ranked_count": sum(1 for r in group.runs if r.row.get("ranked")),
        "provenance": run.info,
        "guess": guess, "error": error,
        "band": [_band(g, t) for g, t in zip(guess, truth, strict=True)],
        "asked": [i in run.answers for i in ids],
        "reason": [run.reasons.get(i) for i in ids],
        "pairs": {b.predictor: pairs[(run.predictor, b.predictor)]
                  for b in group.runs if b is not run},
    }
    for key, values in (("raw", run.raw), ("latency_s", run.latency), ("cost_usd", run.cost)):
        column = [values.get(i) for i in ids]
        if any(v is not None for v in column):
            out[key] = column
    return out


def chunks(group: TestSetRuns, listing: dict[str, Any]) -> list[dict[str, Any]]:
    """The product text and every predictor's guess, ``CHUNK`` items a file."""
    ids: list[int] = listing["id"]
    rows = group.rows or {}
    out = []
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        out.append({"start": start,
                    "text": [rows[i].product().description if i in rows else None
                             for i in part],
                    "guess": [[r.answers.get(i) for r in group.runs] for i in part],
                    "band": [[_band(r.answers.get(i), r.truth.get(i)) for r in group.runs]
                             for i in part]})
    return out
