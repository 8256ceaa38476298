"""Predictors used by the tests, loaded through BENCH_PLUGINS or an entry point."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from bench import Prediction, Product, price_predictor, register


@price_predictor("slow-pricer")
def slow_pricer(product: Product, delay: float = 0.05) -> float:
    """Prices by title length, slowly (for kill-and-resume tests)."""
    log = os.environ.get("TOY_CALL_LOG")
    if log:
        with Path(log).open("a") as handle:
            handle.write(f"{product.id}\n")
    time.sleep(delay)
    return float(len(product.title))


@price_predictor("flaky-pricer")
def flaky_pricer(product: Product) -> float | None:
    """Fails on ids divisible by 7, gives no answer on ids divisible by 5."""
    if product.id % 7 == 0:
        raise RuntimeError(f"boom on {product.id}")
    if product.id % 5 == 0:
        return None
    return 100.0


@register("batch-pricer")
class BatchPricer:
    """Batch-native: prices a chunk at once; one poisoned id breaks a whole chunk."""

    def __init__(self, batch_size: int = 10, poison: int = -1):
        self.name = "batch-pricer"
        self.batch_size = batch_size
        self.poison = poison
        self.calls: list[int] = []

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        self.calls.append(len(products))
        if any(p.id == self.poison for p in products):
            raise ValueError("poisoned item")
        return [Prediction(price=float(p.id)) for p in products]
