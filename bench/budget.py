"""``bench run --max-cost DOLLARS``: never start a request the budget cannot pay for.

Before a run asks anything, each item left is priced with the predictor's own
``estimate()`` (nothing sent; the reply counted at its token cap, so an upper
bound for output). An item the response cache already holds costs nothing,
and a predictor with no ``estimate()`` (a local model, a recorded run) costs
nothing. Items are taken in order while the running estimate fits what is
left of the budget; cached items are always taken. The rest stay unasked: the
run is marked ``interrupted`` with the reason, and rerunning with a larger
budget resumes it. After each run, what it really spent (the answers'
``cost_usd``, else the estimate) is charged, so one budget covers every run of
one ``bench run``. A predictor whose cost it cannot tell (a model missing from
the price table) is not started under a budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError
from bench.types import Product, capabilities


def check(dollars: float | None) -> float | None:
    """``--max-cost`` as given, or BenchError for a negative or non-finite one."""
    if dollars is not None and not (math.isfinite(dollars) and dollars >= 0):
        raise BenchError(f"--max-cost must be a number of dollars, 0 or more, not {dollars}")
    return dollars


@dataclass
class Budget:
    """Dollars one ``bench run`` may spend, and what it spent so far."""

    limit: float
    spent: float = 0.0
    _planned: dict[int, float] = field(default_factory=dict)

    @property
    def left(self) -> float:
        return max(0.0, self.limit - self.spent)

    def plan(self, predictor: Any, todo: Sequence[Product]) -> tuple[list[Product], str | None]:
        """The items this budget pays for, and why the others wait (None: all fit)."""
        caps = capabilities(predictor)
        whole = caps.estimate(todo)
        self._planned = {}
        if whole is None:  # asks nothing that costs: a local model, a recorded run
            return list(todo), None
        if whole.get("cost_usd") is None:
            return [], (f"cost unknown for {predictor.name} (not in the price table), so "
                        "--max-cost cannot hold it; set --param price_in=... price_out=...")
        if whole["cost_usd"] <= self.left:
            self._planned = {p.id: _cost(caps.estimate([p])) for p in todo}
            return list(todo), None
        taken, total = [], 0.0
        for p in todo:
            cost = _cost(caps.estimate([p]))
            if cost == 0.0 or total + cost <= self.left:
                taken.append(p)
                total += cost
                self._planned[p.id] = cost
        waiting, more = len(todo) - len(taken), whole["cost_usd"] - total
        return taken, (f"--max-cost ${self.limit:,.4f}: {waiting} item"
                       f"{'s' if waiting != 1 else ''} not asked (about ${more:,.4f} more; "
                       f"${self.left:,.4f} was left); rerun with a larger --max-cost to resume")

    def charge(self, spent: Mapping[int, float | None]) -> float:
        """Add what the planned items cost (their recorded ``cost_usd``, else the
        estimate); returns the amount charged."""
        amount = sum(c if (c := spent.get(i)) is not None else est
                     for i, est in self._planned.items())
        self.spent += amount
        self._planned = {}
        return amount


def _cost(estimate: dict[str, Any] | None) -> float:
    value = (estimate or {}).get("cost_usd")
    return float(value) if value is not None else 0.0
