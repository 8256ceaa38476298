"""The cost of accuracy: error against cost per 1,000 items and against time per item.

One rule decides which runs no other run beats (``pareto``): the chart, the
table and the site all mark the frontier through it. Costs come from what a
run recorded (the predictors' ``cost_usd``), else from what is known of a
recorded run's system (``bench.systems``), else $0 for a run here of a kind
that spends nothing (classic ML, floors); otherwise the cost is unknown and
the run is left off the cost chart. A recorded run's time per item is the
replay's, not its system's, so it is left off the time chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from bench import metrics, systems
from bench.records import RunInfo
from bench.reports import format as fmt


class Entry(Protocol):
    """What this module reads of ``bench.reports.collect.Entry`` (which imports it)."""

    predictor: str
    kind: str
    status: str
    info: RunInfo
    records: Mapping[int, Any]
    scores: metrics.Scores
    system: systems.System | None
    test_set: str
    frontier: tuple[bool, bool]  # (on the cost frontier, on the time frontier)

    @property
    def recorded(self) -> bool: ...
    @property
    def kind_label(self) -> str: ...
    @property
    def seconds_per_item(self) -> float | None: ...

ITEMS = 1000  # costs are per this many items


def pareto(points: Sequence[tuple[float | None, float | None]]) -> list[bool]:
    """For each (x, y) point, lower better on both: True when no other point beats it.

    A point is beaten when another is at most as large on both axes and smaller
    on one. Equal points do not beat each other (both are on the frontier). A
    point with a missing value is on no frontier.
    """
    known = [(i, x, y) for i, (x, y) in enumerate(points) if x is not None and y is not None]
    out = [False] * len(points)
    for i, x, y in known:
        out[i] = not any(bx <= x and by <= y and (bx < x or by < y) for _, bx, by in known)
    return out


def cost_per_1k(e: Entry) -> tuple[float | None, str | None]:
    """The run's cost per 1,000 items in dollars and where the figure comes from."""
    spent = e.info.totals.cost_usd if e.info.totals else None
    asked = len(e.records)
    if spent is not None and asked and not e.recorded:
        return spent / asked * ITEMS, "recorded by the run"
    if e.system is not None and e.system.recorded:
        known = e.system.known.get("cost_per_1k_usd")
        basis = e.system.known.get("cost_basis")
        return (float(known), basis) if isinstance(known, int | float) else (None, basis)
    if e.kind in systems.FREE_KINDS:
        return 0.0, "runs on a CPU, no API spend"
    return None, None


def time_per_item(e: Entry) -> float | None:
    """Seconds per item, None for a recorded run (its time is the replay's)."""
    return None if e.recorded else e.seconds_per_item


def row_figures(e: Entry) -> dict[str, Any]:
    """The keys a leaderboard row gains: cost per 1,000 items, its basis, time per item."""
    value, basis = cost_per_1k(e)
    return {"cost_per_1k_usd": value, "cost_basis": basis, "time_per_item_s": time_per_item(e),
            "cost_frontier": e.frontier[0], "time_frontier": e.frontier[1]}


def scored(entries: Sequence[Entry]) -> list[Entry]:
    """The entries the frontiers are drawn over: complete runs with an error figure."""
    return [e for e in entries if e.status == "complete" and e.scores.mae is not None]


def frontiers(entries: Sequence[Entry]) -> tuple[list[bool], list[bool]]:
    """Per entry of ``scored(entries)``: on the cost frontier, on the time frontier."""
    runs = scored(entries)
    by_cost = pareto([(cost_per_1k(e)[0], e.scores.mae) for e in runs])
    by_time = pareto([(time_per_item(e), e.scores.mae) for e in runs])
    return by_cost, by_time


def mark_frontiers(entries: Sequence[Entry]) -> None:
    """Set each entry's ``frontier`` flags, within its test set."""
    for ts in dict.fromkeys(e.test_set for e in entries):
        group = [e for e in entries if e.test_set == ts]
        for e in group:
            e.frontier = (False, False)
        runs = scored(group)
        for e, c, t in zip(runs, *frontiers(runs), strict=True):
            e.frontier = (c, t)


def markdown(entries: Sequence[Entry]) -> list[str]:
    """The cost table of one test set's entries, cheapest first; frontier runs in bold."""
    runs = scored(entries)
    by_cost, by_time = frontiers(runs)
    order = sorted(range(len(runs)), key=lambda i: (
        cost_per_1k(runs[i])[0] is None, cost_per_1k(runs[i])[0] or 0.0, runs[i].scores.mae))
    lines = ["| predictor | kind | MAE | cost / 1,000 items | time / item | frontier |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    for i in order:
        e = runs[i]
        value, basis = cost_per_1k(e)
        marks = ", ".join(m for m, on in (("cost", by_cost[i]), ("time", by_time[i])) if on)
        shown = fmt.cost(value) if value is not None else "unknown"
        name = f"**`{e.predictor}`**" if marks else f"`{e.predictor}`"
        lines.append(f"| {name} | {e.kind_label} | {fmt.money(e.scores.mae)} | {shown}"
                     f"{' (estimate)' if basis and basis.startswith('estimate') else ''} | "
                     f"{fmt.per_item(time_per_item(e))} | {marks or '-'} |")
    return lines


def section(entries: Sequence[Entry], chart: str | None = None) -> list[str]:
    """LEADERBOARD.md's cost section for one test set (nothing when no run has a cost)."""
    if not any(cost_per_1k(e)[0] is not None for e in scored(entries)):
        return []
    lines = ["### The cost of accuracy", ""]
    if chart:
        lines += [f"![error against cost per 1,000 items and time per item]({chart})", ""]
    lines += ["Cost per 1,000 items: what the run spent, or an estimate for a recorded run "
              "at list prices; $0 for models that run on a CPU with no API. In bold with its "
              "axis under \"frontier\": no other complete run is both cheaper (or faster) and "
              "more accurate.", ""]
    return [*lines, *markdown(entries), ""]
