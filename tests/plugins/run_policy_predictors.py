"""Predictors for the run-policy tests (time limits, interrupts, locks, skips),
loaded through BENCH_PLUGINS. Their behaviour is steered by environment
variables, which are not part of their fingerprints: a resumed run is the same run.

- ``POLICY_HANG_IDS``: comma-separated ids on which they never return;
- ``POLICY_DELAY``: seconds each item takes otherwise (default 0);
- ``POLICY_CALL_LOG``: a file that gets ``<pid> <id>`` per item asked.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bench import BenchError, Prediction, Product, price_predictor, register


def _hang_ids() -> set[int]:
    return {int(x) for x in os.environ.get("POLICY_HANG_IDS", "").split(",") if x.strip()}


def _log(product: Product) -> None:
    log = os.environ.get("POLICY_CALL_LOG")
    if log:
        with Path(log).open("a") as handle:
            handle.write(f"{os.getpid()} {product.id}\n")


def _never_return() -> None:
    threading.Event().wait()


@price_predictor("hang-pricer")
def hang_pricer(product: Product) -> float:
    """Prices by id; never returns on the ids in POLICY_HANG_IDS."""
    _log(product)
    if product.id in _hang_ids():
        _never_return()
    time.sleep(float(os.environ.get("POLICY_DELAY", "0")))
    return 10.0 + product.id


@register("hang-batch")
class HangBatch:
    """Batch-native; a chunk holding an id of POLICY_HANG_IDS never returns."""

    def __init__(self, batch_size: int = 4):
        self.name = "hang-batch"
        self.batch_size = batch_size

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        if _hang_ids() & {p.id for p in products}:
            _never_return()
        return [Prediction(price=10.0 + p.id) for p in products]


@register("prepare-fails")
class PrepareFails:
    """Cannot get ready: its preparing raises a BenchError."""

    name = "prepare-fails"

    def prepare(self) -> None:
        raise BenchError("prepare-fails: its model file is missing")

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        raise AssertionError("never called: prepare failed")
