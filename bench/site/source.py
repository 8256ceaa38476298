"""The stored runs as the site sees them: the one adapter onto the reporting layer.

Everything the site shows comes through ``load``: the scored entries of
``bench.leaderboard.collect`` (so every figure is the one ``leaderboard.json``
and ``bench compare`` print), each with its leaderboard row and the test rows
(titles, text, categories) where they can be found here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import breakdown, leaderboard, metrics
from bench.data import Row
from bench.errors import BenchError


@dataclass
class Run:
    """One predictor's latest scored run on one test set."""

    predictor: str
    test_set: str
    kind: str
    row: dict[str, Any]  # its leaderboard.json row, as `bench leaderboard` writes it
    info: dict[str, Any]  # run.json
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


def load(results_dir: Path, data_dir: Path | None = None) -> list[TestSetRuns]:
    """Every test set's runs, the fixed benchmark first; BenchError when there are none."""
    entries = leaderboard.collect(results_dir)
    if not entries:
        raise BenchError("no stored runs: run `bench run` first", results_dir)
    leaderboard.attach_categories(entries, data_dir)
    finder = breakdown.TestRows(data_dir)
    out: list[TestSetRuns] = []
    for ts in dict.fromkeys(e.test_set for e in entries):
        group = [e for e in entries if e.test_set == ts]
        rows = finder.for_run(group[0].info)
        out.append(TestSetRuns(ts, [_run(e) for e in group], rows))
    return out


def _run(e: leaderboard.Entry) -> Run:
    row = e.row()
    row.pop("run_dir", None)  # a local path: the site shows the run, not where it lay
    recs = e.records
    return Run(e.predictor, e.test_set, e.kind, row, e.info, e.answers,
               {i: r.error for i, r in recs.items()}, {i: r.raw for i, r in recs.items()},
               {i: r.latency_s for i, r in recs.items()}, {i: r.cost_usd for i, r in recs.items()},
               e.truth)


def paired(a: Run, b: Run) -> metrics.Paired:
    """A against B exactly as ``bench compare A B`` computes it."""
    return metrics.paired({**a.truth, **b.truth}, a.answers, b.answers)


def pair_table(runs: Sequence[Run]) -> dict[tuple[str, str], dict[str, Any]]:
    """The paired comparison of every ordered pair, computed once per unordered pair.

    B against A is A against B with the signs swapped: the bootstrap means of
    ``-d`` are the negated means of ``d``, so its interval is ``[-hi, -lo]``.
    """
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            p = paired(a, b)
            out[(a.predictor, b.predictor)] = p.as_dict()
            out[(b.predictor, a.predictor)] = _reversed(p)
    return out


def _reversed(p: metrics.Paired) -> dict[str, Any]:
    ci = [-p.diff_ci95[1], -p.diff_ci95[0]] if p.diff_ci95 else None
    flipped = metrics.Paired(p.items, p.mae_b, p.mae_a, None if p.diff is None else -p.diff,
                             (ci[0], ci[1]) if ci else None, p.b_wins, p.a_wins, p.ties)
    return flipped.as_dict()
