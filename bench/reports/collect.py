"""Stored runs, collected for reports: the latest run per predictor, scored and ranked.

Derived from the stored predictions only (``bench.store``, ``bench.records``):
each entry is scored on the items it answered, ranked within its test set, and
paired with that test set's leader on the items both answered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import breakdown, kinds, metrics, systems
from bench.data import DEFAULT_TEST
from bench.records import RunInfo
from bench.reports import cost
from bench.store import Record, RunStore, iter_runs, warn


@dataclass
class Entry:
    """The latest run of one predictor on one test set, scored."""

    predictor: str
    test_set: str
    kind: str
    store: RunStore
    info: RunInfo
    records: dict[int, Record]
    scores: metrics.Scores
    rank: int | None = None
    leader: str | None = None  # the test set's best predictor, when this is not it
    vs_leader: metrics.Paired | None = None  # this minus the leader, on shared items
    categories: dict[int, str | None] | None = None  # None: the test rows are not at hand
    status: str = "complete"  # complete | incomplete | failed (see ``run_status``)
    # The time per item to publish instead of this run's own (``keep_timings``).
    kept_seconds_per_item: tuple[float | None] | None = None
    name: str = ""  # the predictor's own name (``predictor`` may add its parameters)
    system: systems.System | None = None  # what the run is (``bench.systems``)
    frontier: tuple[bool, bool] = (False, False)  # no other run beats it on error and cost,
    #                                               error and time (``cost.mark_frontiers``)

    @property
    def truth(self) -> dict[int, float]:
        return {i: r.truth for i, r in self.records.items() if r.truth is not None}

    @property
    def answers(self) -> dict[int, float | None]:
        return {i: r.price for i, r in self.records.items()}

    @property
    def kind_label(self) -> str:
        """The kind's label, `` (recorded)`` added for a recorded run."""
        return kinds.label(self.kind) + (f" ({kinds.RECORDED})" if self.recorded else "")

    @property
    def recorded(self) -> bool:
        return bool(self.system and self.system.recorded)

    @property
    def tied_with_leader(self) -> bool | None:
        """None for the leader itself (and for runs with no answer)."""
        return None if self.vs_leader is None else self.vs_leader.tied

    @property
    def seconds_per_item(self) -> float | None:
        if self.kept_seconds_per_item is not None:
            return self.kept_seconds_per_item[0]
        return self.info.seconds_per_item

    def keep_seconds_per_item(self, seconds: float | None) -> None:
        """Report ``seconds`` (the time already published) instead of this run's own."""
        self.kept_seconds_per_item = (seconds,)

    @property
    def marked(self) -> str:
        """The predictor's name, with `` (incomplete)`` / `` (failed)`` unless complete."""
        return self.predictor if self.status == "complete" \
            else f"{self.predictor} ({self.status})"

    @property
    def cost_usd(self) -> float | None:
        return self.info.totals.cost_usd if self.info.totals else None

    @property
    def run_dir(self) -> str:
        """The run folder relative to the results dir (``test set/predictor-hash``)."""
        return f"{self.store.dir.parent.name}/{self.store.dir.name}"

    def price_bands(self) -> list[breakdown.Group]:
        return breakdown.by_price_band(self.truth, self.answers)

    def category_groups(self) -> list[breakdown.Group] | None:
        if self.categories is None:
            return None
        return breakdown.by_category(self.truth, self.answers, self.categories)

    def row(self) -> dict[str, Any]:
        """The entry as a leaderboard.json row."""
        s = self.scores
        totals = self.info.totals
        groups = self.category_groups()
        vs = None
        if self.vs_leader is not None:
            p = self.vs_leader
            vs = {"leader": self.leader, "items": p.items, "diff": p.diff,
                  "diff_ci95": list(p.diff_ci95) if p.diff_ci95 else None,
                  "wins": p.a_wins, "leader_wins": p.b_wins, "ties": p.ties, "tied": p.tied}
        return {
            "predictor": self.predictor, "test_set": self.test_set, "kind": self.kind,
            "status": self.status, "params": dict(self.info.params or {}),
            "answered": s.answered, "total": s.total, "mae": s.mae,
            "mae_ci95": list(s.mae_ci95) if s.mae_ci95 else None, "rmsle": s.rmsle,
            "hit_rate": s.hit_rate, "orange_rate": s.orange_rate,
            "median_error": s.median_error, "coverage": s.coverage,
            "cost_usd": self.cost_usd, "seconds_per_item": self.seconds_per_item,
            "input_tokens": totals.input_tokens if totals else None,
            "output_tokens": totals.output_tokens if totals else None,
            "run_dir": self.run_dir,
            "rank": self.rank, "kind_label": self.kind_label,
            "recorded": self.recorded, "system": self.system.as_dict() if self.system else None,
            **cost.row_figures(self),
            "tied_with_leader": self.tied_with_leader, "vs_leader": vs,
            "by_price_band": [g.as_dict() for g in self.price_bands()],
            "by_category": [g.as_dict() for g in groups] if groups is not None else None,
        }


def collect(results_dir: Path, test_set: str | None = None) -> list[Entry]:
    """One entry per (test set, predictor, parameters): its latest run, ranked.

    Runs of one predictor with different ``--param`` values are different
    entries, named by what differs (``by-length (dollars_per_char=0.3)``); among
    runs with the same ones, the latest wins (``RunInfo.order``, then the folder
    name: nothing ties). A run stopped with ``--limit`` is scored on the items it
    answered for; its ``total`` is the test set size recorded in run.json, so
    coverage shows it, and it is marked incomplete. Each entry after the first of
    its test set is compared with that leader. A run whose run.json is damaged is
    left out with a one-line warning naming the file (``bench run`` rewrites it).
    """
    latest: dict[tuple[str, str, str], tuple[tuple[str, int, str], RunStore, RunInfo]] = {}
    for store in iter_runs(results_dir):
        problem = store.run_problem() if store.run_path.exists() else "missing"
        info = None if problem else store.run_info()
        if info is None or not info.predictor or not info.test_set:
            warn(str(store.run_path), f"{problem or 'unreadable'}; run left out "
                 "(rerun its `bench run` command to rewrite it)")
            continue
        name, ts = info.predictor, info.test_set
        if test_set and ts != test_set:
            continue
        key = (ts, name, params_key(info.params))
        order = (*info.order, store.dir.name)
        if key not in latest or order > latest[key][0]:
            latest[key] = (order, store, info)
    labels = _labels([(ts, name, info.params or {}) for (ts, name, _), (_, _, info)
                      in latest.items()])
    entries = []
    for (ts, name, pkey), (_, store, info) in latest.items():
        records = store.records()
        truth = {i: r.truth for i, r in records.items() if r.truth is not None}
        total = int(info.items or len(truth))
        answers = {i: r.price for i, r in records.items()}
        scores = metrics.score(truth, answers)
        scores = metrics.Scores(**{**scores.__dict__, "total": total,
                                   "coverage": scores.answered / total if total else 0.0})
        system = systems.describe(info)
        entries.append(Entry(labels[(ts, name, pkey)], ts, system.kind, store, info,
                             records, scores, status=run_status(info, len(records), total),
                             name=name, system=system))
    entries = sort_entries(entries)
    rank_and_compare(entries)
    cost.mark_frontiers(entries)
    return entries


def run_status(info: RunInfo, stored: int, total: int) -> str:
    """``failed`` (the run said so), ``incomplete`` (still running, interrupted, killed,
    or fewer items stored, answered or not, than the test set has) or ``complete``."""
    if info.status == "failed":
        return "failed"
    if info.status in ("running", "interrupted") or stored < total:
        return "incomplete"
    return "complete"


def params_key(params: dict[str, Any] | None) -> str:
    return json.dumps(params or {}, sort_keys=True, default=str)


def _labels(identities: list[tuple[str, str, dict[str, Any]]]) -> dict[tuple[str, str, str],
                                                                          str]:
    """Each (test set, predictor, parameters) named by the parameters that differ
    between the runs of that predictor on that test set; a lone run keeps its name."""
    out = {}
    for ts, name, params in identities:
        peers = [p for t, n, p in identities if (t, n) == (ts, name)]
        keys = sorted({k for p in peers for k in p
                       if len({json.dumps(q.get(k), default=str) for q in peers}) > 1})
        shown = ", ".join(f"{k}={params[k]}" for k in keys if k in params)
        out[(ts, name, params_key(params))] = f"{name} ({shown})" if shown else name
    return out


def sort_entries(entries: list[Entry]) -> list[Entry]:
    """The fixed benchmark first, then other test sets; best MAE first within each."""
    return sorted(entries, key=lambda e: (e.test_set != DEFAULT_TEST, e.test_set,
                                          e.scores.mae is None, e.scores.mae or 0.0,
                                          e.predictor))


def rank_and_compare(entries: Sequence[Entry]) -> None:
    """Rank within each test set and pair every scored entry with its leader."""
    for ts in dict.fromkeys(e.test_set for e in entries):
        group = [e for e in entries if e.test_set == ts]
        leader = next((e for e in group if e.scores.mae is not None), None)
        for rank, e in enumerate(group, start=1):
            e.rank = rank
            if leader is None or e is leader or e.scores.mae is None:
                continue
            e.leader = leader.predictor
            e.vs_leader = metrics.paired({**leader.truth, **e.truth}, e.answers, leader.answers)


def attach_categories(entries: Sequence[Entry], data_dir: Path | None) -> list[str]:
    """Give entries the categories of their test rows, where the rows can be found.

    Returns the test sets left without categories (their tables show price bands only).
    """
    finder = breakdown.TestRows(data_dir)
    for e in entries:
        e.categories = breakdown.categories(finder.for_run(e.info))
    return [ts for ts in dict.fromkeys(e.test_set for e in entries)
            if all(e.categories is None for e in entries if e.test_set == ts)]
