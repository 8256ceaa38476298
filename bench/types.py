"""The core contracts: what a predictor sees, what it returns, what it is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Product:
    """One item to price, as a predictor sees it: never the truth price.

    ``description`` is the product text of the prompt (title line plus body, no
    question, no price line); ``prompt`` is the canonical test prompt ending in
    ``Price is $``. ``details`` holds the product attributes when the data
    source has them (the data directory does, the hub's data set does not).
    """

    id: int
    title: str
    description: str
    prompt: str
    category: str | None = None
    details: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Prediction:
    """One answer. ``price is None`` means no answer, with ``error`` saying why."""

    price: float | None
    raw: str | None = None
    error: str | None = None
    latency_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None

    @classmethod
    def failed(cls, error: str, raw: str | None = None, **extra: Any) -> Prediction:
        return cls(price=None, error=error, raw=raw, **extra)


@dataclass(frozen=True)
class Example:
    """A training row: the product as a predictor would see it, plus its price."""

    product: Product
    price: float


@runtime_checkable
class Predictor(Protocol):
    """Anything that prices products, in order, one Prediction per Product.

    Optional capabilities, discovered with ``getattr``, never required:
    ``unavailable() -> str | None``, ``fingerprint() -> dict``,
    ``fit(examples)``, ``predict_one(product)`` (per-item: the runner fans these
    out over a thread pool), ``batch_size`` and ``default_concurrency``.
    """

    name: str

    def predict(self, products: Sequence[Product]) -> Sequence[Prediction]: ...
