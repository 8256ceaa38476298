"""Predictors that misbehave, for the tests that a predictor cannot take the run
down (loaded through BENCH_PLUGINS). Steered by environment variables, which
are not part of their fingerprints:

- ``ROGUE_RAISE``: what they raise: ``SystemExit`` (with code 3),
  ``KeyboardInterrupt`` or ``GeneratorExit``;
- ``ROGUE_IDS``: comma-separated ids on which they raise (default: every id).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from bench import Prediction, Product, price_predictor, register


def _raise_on(ids: set[int]) -> None:
    chosen = os.environ.get("ROGUE_IDS", "")
    if chosen and not ids & {int(x) for x in chosen.split(",") if x.strip()}:
        return
    what = os.environ.get("ROGUE_RAISE", "SystemExit")
    if what == "SystemExit":
        raise SystemExit(3)
    if what == "KeyboardInterrupt":
        raise KeyboardInterrupt
    if what == "GeneratorExit":
        raise GeneratorExit("closed")
    raise AssertionError(f"ROGUE_RAISE={what!r}")


@price_predictor("rogue-item")
def rogue_item(product: Product) -> float:
    """Per item: raises a BaseException (ROGUE_RAISE) on the ids of ROGUE_IDS."""
    _raise_on({product.id})
    return 10.0 + product.id


@register("rogue-batch")
class RogueBatch:
    """Batch-native: a chunk holding an id of ROGUE_IDS raises ROGUE_RAISE."""

    def __init__(self, batch_size: int = 4):
        self.name = "rogue-batch"
        self.batch_size = batch_size

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        _raise_on({p.id for p in products})
        return [Prediction(price=10.0 + p.id) for p in products]


@price_predictor("steady")
def steady(product: Product) -> float:
    """Runs after the rogues: 20 + the id."""
    return 20.0 + product.id
