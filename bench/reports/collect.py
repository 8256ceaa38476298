"""Stored runs, collected for reports: the latest run per predictor, scored and ranked.

Derived from the stored predictions only (``bench.store``, ``bench.records``):
each entry is scored on the items it answered, given its standing
(``bench.standing``: status, and whether it is ranked), ranked within its test
set when it may be, and paired with that test set's leader (the best ranked
run) on the items both answered. The ranked runs' comparisons with the leader
are one family: their p-values are corrected together (Holm).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import breakdown, kinds, metrics, standing, systems
from bench.data import DEFAULT_TEST
from bench.digest import digest
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
    rank: int | None = None  # None: not ranked
    leader: str | None = None  # the test set's best ranked predictor, when this is not it
    vs_leader: metrics.Paired | None = None  # this minus the leader, on shared items
    categories: dict[int, str | None] | None = None  # None: the test rows are not at hand
    status: str = standing.COMPLETE  # see ``bench.standing``
    not_ranked: str | None = None  # why the board does not rank it (None: ranked)
    # The comparison with the leader, Holm-corrected over the ranked runs' comparisons.
    p_holm: float | None = None
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
    def ranked(self) -> bool:
        return self.not_ranked is None

    @property
    def verdict(self) -> str | None:
        """Against the leader, corrected for the number of comparisons (Holm):
        ``better`` / ``worse`` / ``not significant``; None for the leader, for a run
        that is not ranked (outside the family) or with no shared items."""
        p = self.vs_leader
        if p is None or self.p_holm is None or p.diff is None:
            return None
        if self.p_holm > metrics.ALPHA:
            return "not significant"
        return "better" if p.diff < 0 else "worse"

    @property
    def marked(self) -> str:
        """The predictor's name, with `` (partial)`` / `` (incomplete)`` / `` (failed)``
        unless complete."""
        return self.predictor if self.status == standing.COMPLETE \
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
                  "wins": p.a_wins, "leader_wins": p.b_wins, "ties": p.ties, "tied": p.tied,
                  "p_value": p.p_value, "p_holm": self.p_holm, "verdict": self.verdict}
        return {
            "predictor": self.predictor, "test_set": self.test_set, "kind": self.kind,
            "status": self.status, "ranked": self.ranked, "not_ranked": self.not_ranked,
            "params": dict(self.info.params or {}),
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


def collect(results_dir: Path, test_set: str | None = None, *,
            min_answered: float = standing.MIN_ANSWERED) -> list[Entry]:
    """One entry per (test set, predictor, parameters): its latest run, ranked.

    Runs of one predictor with different ``--param`` values are different
    entries, named by what differs (``by-length (dollars_per_char=0.3)``); among
    runs with the same ones, the latest wins (``RunInfo.order``, then the folder
    name: nothing ties). A run stopped with ``--limit`` is scored on the items it
    answered for; its ``total`` is the test set size recorded in run.json, so
    coverage shows it, and it is marked partial. Only runs that ``bench.standing``
    ranks (complete, answering at least ``min_answered`` of the test set) get a
    rank; the others follow them, not ranked. Every scored entry but the leader is
    compared with it. A run whose run.json is damaged is left out with a one-line
    warning naming the file (``bench run`` rewrites it).
    """
    min_answered = standing.check_min_answered(min_answered)
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
        odd = [k for k, v in scores.__dict__.items() if isinstance(v, float) and
               not math.isfinite(v)]
        if odd:  # one odd run never breaks the board: it is left out, said once
            warn(str(store.dir), f"{', '.join(odd)} not a finite number; run left out")
            continue
        where = standing.standing(info, len(records), scores.answered, total, min_answered)
        system = systems.describe(info)
        entries.append(Entry(labels[(ts, name, pkey)], ts, system.kind, store, info,
                             records, scores, status=where.status,
                             not_ranked=where.not_ranked, name=name, system=system))
    entries = sort_entries(entries)
    rank_and_compare(entries)
    cost.mark_frontiers(entries)
    return entries


def params_key(params: dict[str, Any] | None) -> str:
    return json.dumps(params or {}, sort_keys=True, default=str)


LABEL_VALUE = 40  # characters of a parameter's value a row's name shows at most


def label_value(value: Any) -> str:
    """A parameter's value as a row's name shows it: short and stable. A path is its
    file's name (``/home/me/sheets/good.csv`` -> ``good.csv``: where a file lies is
    no part of what ran), a long value is cut; the full value is in ``params``."""
    text = " ".join(str(value).split())
    if "/" in text or "\\" in text:
        text = re.split(r"[/\\]", text.rstrip("/\\"))[-1] or text
    return text if len(text) <= LABEL_VALUE else text[: LABEL_VALUE - 1] + "…"


def _labels(identities: list[tuple[str, str, dict[str, Any]]]) -> dict[tuple[str, str, str],
                                                                          str]:
    """Each (test set, predictor, parameters) named by the parameters that differ
    between the runs of that predictor on that test set (their values shortened,
    ``label_value``); a lone run keeps its name. Two identities that would share a
    name (two sheets called good.csv in different folders) both get a short digest
    of their parameters, so every row, chart file and page has a name of its own."""
    out = {}
    for ts, name, params in identities:
        peers = [p for t, n, p in identities if (t, n) == (ts, name)]
        keys = sorted({k for p in peers for k in p
                       if len({json.dumps(q.get(k), default=str) for q in peers}) > 1})
        shown = ", ".join(f"{k}={label_value(params[k])}" for k in keys if k in params)
        out[(ts, name, params_key(params))] = f"{name} ({shown})" if shown else name
    taken = Counter((key[0], label) for key, label in out.items())
    for key, label in out.items():
        if taken[(key[0], label)] > 1:
            tag = digest(key[2], 6)
            out[key] = f"{label[:-1]}, #{tag})" if label.endswith(")") else f"{label} (#{tag})"
    return out


def sort_entries(entries: list[Entry]) -> list[Entry]:
    """The fixed benchmark first, then other test sets; within each, the ranked runs
    then the others, best MAE first."""
    return sorted(entries, key=lambda e: (e.test_set != DEFAULT_TEST, e.test_set,
                                          not e.ranked, e.scores.mae is None,
                                          e.scores.mae or 0.0, e.predictor))


def rank_and_compare(entries: Sequence[Entry]) -> None:
    """Rank the ranked runs of each test set, pair every other scored entry with
    the best of them, and correct the ranked runs' p-values together (Holm)."""
    for ts in dict.fromkeys(e.test_set for e in entries):
        group = [e for e in entries if e.test_set == ts]
        ranked = [e for e in group if e.ranked]
        leader = next((e for e in ranked if e.scores.mae is not None), None)
        for rank, e in enumerate(ranked, start=1):
            e.rank = rank
        for e in group:
            if leader is None or e is leader or e.scores.mae is None:
                continue
            e.leader = leader.predictor
            e.vs_leader = metrics.paired({**leader.truth, **e.truth}, e.answers, leader.answers)
        family = [e for e in ranked if e.vs_leader is not None]
        for e, adjusted in zip(family, metrics.holm([e.vs_leader.p_value for e in family
                                                     if e.vs_leader is not None]),
                               strict=True):
            e.p_holm = adjusted


def attach_categories(entries: Sequence[Entry], data_dir: Path | None) -> list[str]:
    """Give entries the categories of their test rows, where the rows can be found.

    Returns the test sets left without categories (their tables show price bands only).
    """
    finder = breakdown.TestRows(data_dir)
    for e in entries:
        e.categories = breakdown.categories(finder.for_run(e.info))
    return [ts for ts in dict.fromkeys(e.test_set for e in entries)
            if all(e.categories is None for e in entries if e.test_set == ts)]
