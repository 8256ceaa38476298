"""pricer-bench: one fixed test set, every way of guessing a product's price.

The public API for writing predictors::

    from bench import Product, price_predictor

    @price_predictor("my-guess")
    def my_guess(product: Product) -> float:
        return 42.0
"""

from bench.errors import BenchError
from bench.registry import price_predictor, register
from bench.types import BasePredictor, Example, Prediction, Predictor, Product

__all__ = [
    "BasePredictor", "BenchError", "Example", "Prediction", "Predictor", "Product",
    "price_predictor", "register",
]
__version__ = "0.1.0"
