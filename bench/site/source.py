"""The stored runs as the site sees them: the one adapter onto the reporting layer.

Everything the site shows comes through ``load``: the scored entries of
``bench.reports.collect`` (so every figure is the one ``leaderboard.json``
and ``bench compare`` print), each with its leaderboard row and the test rows
(titles, text, categories) where they can be found here. When the reporting
layer's API changes (a typed run.json, a mark for incomplete or failed runs),
this module is the one to change.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import breakdown, metrics, standing
from bench.data import Row
from bench.errors import BenchError
from bench.reports.collect import Entry, attach_categories, collect
from bench.reports.format import published


@dataclass
class Run:
    """One predictor's latest scored run on one test set."""

    predictor: str
    test_set: str
    kind: str
    row: dict[str, Any]  # its leaderboard.json row, as `bench leaderboard` writes it
    info: dict[str, Any]  # run.json, as a dict
    answers: dict[int, float | None]
    reasons: dict[int, str | None]  # why there is no answer
    raw: dict[int, str | None]
    latency: dict[int, float | None]
    cost: dict[int, float | None]
    truth: dict[int, float]


@dataclass
class TestSetRuns:
    """The runs of one test set, best first, with its rows when they are at hand."""

    name: str
    runs: list[Run]
    rows: dict[int, Row] | None
    min_answered: float = standing.MIN_ANSWERED  # the ranking rule the runs were ranked by


def load(results_dir: Path, data_dir: Path | None = None, *,
         min_answered: float = standing.MIN_ANSWERED) -> list[TestSetRuns]:
    """Every test set's runs, the fixed benchmark first (within one, the ranked runs
    then the others, as the leaderboard lists them); BenchError when there are none."""
    entries = collect(results_dir, min_answered=min_answered)
    if not entries:
        raise BenchError("no stored runs: run `bench run` first", results_dir)
    attach_categories(entries, data_dir)
    finder = breakdown.TestRows(data_dir)
    out: list[TestSetRuns] = []
    for ts in dict.fromkeys(e.test_set for e in entries):
        group = [e for e in entries if e.test_set == ts]
        rows = finder.for_run(group[0].info)
        out.append(TestSetRuns(ts, [_run(e) for e in group], rows, min_answered))
    return out


def _run(e: Entry) -> Run:
    row = published(e.row())  # the figures exactly as leaderboard.json publishes them
    row.pop("run_dir", None)  # a local path: the site shows the run, not where it lay
    recs = e.records
    return Run(e.predictor, e.test_set, e.kind, row, e.info.to_dict(), e.answers,
               {i: r.error for i, r in recs.items()},
               {i: r.prediction.raw for i, r in recs.items()},
               {i: r.prediction.latency_s for i, r in recs.items()},
               {i: r.prediction.cost_usd for i, r in recs.items()}, e.truth)


def paired(a: Run, b: Run) -> metrics.Paired:
    """A against B exactly as ``bench compare A B`` computes it."""
    return metrics.paired({**a.truth, **b.truth}, a.answers, b.answers)


class PairTable:
    """The paired comparison of every ordered pair, computed once per unordered pair.

    B against A is A against B with the signs swapped: the bootstrap means of
    ``-d`` are the negated means of ``d``, so its interval is ``[-hi, -lo]``.
    Pairs are taken in order of how many items both answered, so those of one
    size share their bootstrap draws (``bench.metrics``). With many pairs they
    are split over ``workers`` forked processes (None: one per CPU, up to 4)
    that start at once, so the caller writes other pages meanwhile; ``result``
    waits for them.
    """

    def __init__(self, runs: Sequence[Run], workers: int | None = None):
        self.runs = runs
        answered = [frozenset(i for i, g in r.answers.items() if g is not None) for r in runs]
        self.pairs = [(i, j) for _, i, j in sorted(
            (len(answered[i] & answered[j]), i, j) for i in range(len(runs))
            for j in range(i + 1, len(runs)))]
        workers = min(os.cpu_count() or 1, 4) if workers is None else workers
        self._pool: Any = None
        self._pending: Any = None
        if workers > 1 and len(self.pairs) >= PARALLEL_FROM \
                and "fork" in mp.get_all_start_methods():
            global _RUNS
            _RUNS = runs  # forked workers inherit it: nothing is pickled but indices
            size = -(-len(self.pairs) // workers)
            chunks = [self.pairs[k:k + size] for k in range(0, len(self.pairs), size)]
            self._pool = mp.get_context("fork").Pool(len(chunks))
            self._pending = self._pool.map_async(_pairs_of, chunks)
            _RUNS = None

    def result(self) -> dict[tuple[str, str], dict[str, Any]]:
        if self._pool is not None:
            try:
                found = [p for part in self._pending.get() for p in part]
            finally:
                self._pool.close()
                self._pool.join()
                self._pool = None
        else:
            found = [paired(self.runs[i], self.runs[j]) for i, j in self.pairs]
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for (i, j), p in zip(self.pairs, found, strict=True):
            a, b = self.runs[i].predictor, self.runs[j].predictor
            out[(a, b)] = p.as_dict()
            out[(b, a)] = _reversed(p)
        return out

    def close(self) -> None:
        """Stop the workers (when the build fails before ``result``)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def pair_table(runs: Sequence[Run], workers: int | None = None
               ) -> dict[tuple[str, str], dict[str, Any]]:
    return PairTable(runs, workers).result()


PARALLEL_FROM = 200  # pairs; fewer are quicker in one process
_RUNS: Sequence[Run] | None = None  # what forked workers read (never pickled)


def _pairs_of(chunk: list[tuple[int, int]]) -> list[metrics.Paired]:
    assert _RUNS is not None
    return [paired(_RUNS[i], _RUNS[j]) for i, j in chunk]


def _reversed(p: metrics.Paired) -> dict[str, Any]:
    ci = [-p.diff_ci95[1], -p.diff_ci95[0]] if p.diff_ci95 else None
    flipped = metrics.Paired(p.items, p.mae_b, p.mae_a, None if p.diff is None else -p.diff,
                             (ci[0], ci[1]) if ci else None, p.b_wins, p.a_wins, p.ties,
                             p.p_value)  # two-sided: the same either way round
    return flipped.as_dict()
