"""Tables for the terminal (``bench run``, ``list``, ``score``), numbers written the
reports' way (``bench.reports.format``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tabulate import tabulate

from bench.escape import terminal
from bench.metrics import Scores
from bench.records import Totals
from bench.reports.format import money, number, percent

HEADERS = ["predictor", "answered", "MAE", "95% CI", "RMSLE", "hits", "median", "cost", "time"]


def score_row(name: str, scores: Scores, totals: Totals | None = None,
              seconds: float | None = None) -> list[str]:
    ci = f"{money(scores.mae_ci95[0])}-{money(scores.mae_ci95[1])}" if scores.mae_ci95 else "-"
    cost = totals.cost_usd if totals else None
    return [name, f"{scores.answered}/{scores.total}", money(scores.mae), ci,
            number(scores.rmsle), percent(scores.hit_rate), money(scores.median_error),
            money(cost) if cost is not None else "-",
            f"{seconds:.1f}s" if seconds is not None else "-"]


def render(rows: Sequence[Sequence[str]], headers: Sequence[str] = HEADERS) -> str:
    """A GitHub-style table; every cell through ``escape.terminal`` (a name or reason
    holding a line break or an escape code cannot split a row or act on the terminal)."""
    return tabulate([[terminal(c) for c in row] for row in rows],
                    headers=[terminal(h) for h in headers], tablefmt="github",
                    disable_numparse=True)


SHORT = 70


def short_reason(reason: str, width: int = SHORT) -> str:
    """Why a predictor cannot run, in one short line: the first clause, without
    asides in brackets, cut to ``width``; the full text is ``bench list --long``."""
    clauses = [c.strip() for c in reason.split("; ") if c.strip()]
    first = re.sub(r"\s*\([^()]*\)", "", clauses[0]) if clauses else reason
    more = f" (+{len(clauses) - 1} more)" if len(clauses) > 1 else ""
    if len(first) + len(more) > width:
        first = first[: width - len(more) - 1].rstrip() + "…"
    return first + more
