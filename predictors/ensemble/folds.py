"""The ensemble's split of the training pool: a holdout, K folds, a paid slice.

One seeded shuffle of the pool (``train.jsonl`` and ``train-extra.jsonl``, test
rows already removed by the data layer) decides everything:

- the first ``holdout`` rows are the holdout: no member and no blend ever
  trains on them; the ensemble reports every member's and its own error there;
- the other rows are the out-of-fold (OOF) pool, dealt round-robin into ``k``
  folds: disjoint, covering, of sizes that differ by at most one. Every member
  uses the same folds;
- the first ``paid`` rows of the OOF pool are the paid slice: members that cost
  money per item (API predictors) give OOF predictions on it only, and the
  blend is then fitted on those rows.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bench.types import Example


def rows_digest(rows: Iterable[Example]) -> str:
    """sha256 of the rows' ids, texts and prices, in order."""
    digest = hashlib.sha256()
    for e in rows:
        digest.update(json.dumps([e.product.id, e.product.description,
                                  round(e.price, 2)]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass
class Plan:
    """A fixed split of the pool; rows are kept in pool order within each part."""

    k: int
    seed: int
    holdout: list[Example]
    folds: list[list[Example]]
    paid: list[Example]
    pool_fingerprint: str = ""
    _fold_of: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._fold_of = {e.product.id: f for f, rows in enumerate(self.folds) for e in rows}

    @property
    def oof_rows(self) -> list[Example]:
        """Every OOF row, fold by fold."""
        return [e for rows in self.folds for e in rows]

    def fold_of(self, item_id: int) -> int:
        return self._fold_of[item_id]

    def digest(self) -> str:
        parts = [rows_digest(self.holdout), *(rows_digest(rows) for rows in self.folds),
                 rows_digest(self.paid)]
        return hashlib.sha256(json.dumps([self.k, self.seed, parts]).encode()).hexdigest()

    def info(self) -> dict[str, object]:
        """What run.json records: sizes and digests of every part (ids: the holdout's)."""
        return {
            "source": "training pool (train.jsonl + train-extra.jsonl), test rows removed",
            "pool_fingerprint": self.pool_fingerprint, "seed": self.seed, "k": self.k,
            "sha256": self.digest(),
            "oof_rows": sum(len(rows) for rows in self.folds),
            "fold_sizes": [len(rows) for rows in self.folds],
            "fold_sha256": [rows_digest(rows)[:16] for rows in self.folds],
            "holdout": {"rows": len(self.holdout), "sha256": rows_digest(self.holdout),
                        "ids": [e.product.id for e in self.holdout]},
            "paid_slice": {"rows": len(self.paid), "sha256": rows_digest(self.paid)},
        }


def make_plan(pool: Sequence[Example], k: int, holdout: int, paid: int, seed: int,
              pool_fingerprint: str = "") -> Plan:
    """Split ``pool`` (see the module's docstring); raises ValueError on sizes that
    leave a fold too small to train or score."""
    if k < 2:
        raise ValueError(f"folds must be at least 2, not {k}")
    if holdout < 0 or paid < 0:
        raise ValueError("holdout and paid_slice cannot be negative")
    rest = len(pool) - holdout
    if rest < 10 * k:
        raise ValueError(f"{len(pool)} training-pool rows leave {rest} after a holdout of "
                         f"{holdout}: too few for {k} folds")
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    held = sorted(order[:holdout])
    dealt = order[holdout:]
    folds = [sorted(dealt[f::k]) for f in range(k)]
    paid_rows = sorted(dealt[:paid])
    return Plan(k, seed, [pool[i] for i in held], [[pool[i] for i in rows] for rows in folds],
                [pool[i] for i in paid_rows], pool_fingerprint)
