"""pricer-bench: one fixed test set, every way of guessing a product's price.

The public API for writing predictors::

    from bench import Product, price_predictor

    @price_predictor("my-guess")
    def my_guess(product: Product) -> float:
        return 42.0

and for scoring them from a notebook (``bench.api``, imported on first use so
that ``import bench`` stays light)::

    import bench

    def guess(prompt: str) -> float:
        return 0.8 * len(prompt.split())

    run = bench.evaluate(guess)       # figures, .to_pandas(), .chart(); shown inline
    bench.compare(run, "reference:gpt-4o-2024-08-06")
    bench.leaderboard()
"""

from typing import Any

from bench.errors import BenchError
from bench.registry import price_predictor, register
from bench.types import BasePredictor, Example, Prediction, Predictor, Product

__all__ = [
    "BasePredictor", "BenchError", "Evaluation", "Example", "Prediction", "Predictor", "Product",
    "compare", "evaluate", "leaderboard", "price_predictor", "register",
]
__version__ = "0.1.0"

_LAZY = {"evaluate": "bench.api", "compare": "bench.api", "leaderboard": "bench.api",
         "Evaluation": "bench.evaluation"}


def __getattr__(name: str) -> Any:
    """The notebook API, imported when first used."""
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
