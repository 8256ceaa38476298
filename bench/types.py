"""The core contracts: what a predictor sees, what it returns, what it is."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class ReadOnlyError(TypeError):
    """A predictor tried to change a product it was given."""

    def __init__(self, product_id: Any):
        self.product_id = product_id
        super().__init__(f"product {product_id}'s details are read-only: predictors must "
                         "not modify their input (copy them first: dict(product.details))")


class ReadOnlyDetails(dict[str, Any]):
    """A product's ``details``: a dict (JSON writes it as one) that refuses every
    change, holding only read-only values (nested dicts are ``ReadOnlyDetails``
    too, lists become tuples, sets frozensets)."""

    __slots__ = ("_product_id",)

    def __init__(self, items: Mapping[str, Any] = (), product_id: Any = None):  # type: ignore[assignment]
        super().__init__((k, _read_only(v, product_id)) for k, v in dict(items).items())
        self._product_id = product_id

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise ReadOnlyError(self._product_id)

    __setitem__ = __delitem__ = __ior__ = _refuse  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:  # copy, deepcopy and pickle: a new read-only one
        return type(self), (dict(self), self._product_id)

    def copy(self) -> dict[str, Any]:  # type: ignore[override]
        """A plain, changeable copy (of the top level)."""
        return dict(self)


def _read_only(value: Any, product_id: Any) -> Any:
    if isinstance(value, Mapping):
        return ReadOnlyDetails(value, product_id)
    if isinstance(value, list | tuple):
        return tuple(_read_only(v, product_id) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(value)
    return value


@dataclass(frozen=True)
class Product:
    """One item to price, as a predictor sees it: never the truth price.

    ``description`` is the product text of the prompt (title line plus body, no
    question, no price line); ``prompt`` is the canonical test prompt ending in
    ``Price is $``. ``details`` holds the product attributes when the data
    source has them (the data directory does, the hub's data set does not).

    A Product cannot be changed, nor can anything in it: its fields are frozen
    and ``details`` is a ``ReadOnlyDetails`` copy made for this Product alone
    (each run builds its own Products), so what one predictor does to its
    input is never seen by another.
    """

    id: int
    title: str
    description: str
    prompt: str
    category: str | None = None
    details: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.details is not None:
            object.__setattr__(self, "details", ReadOnlyDetails(self.details, self.id))


MAX_PRICE = 1_000_000.0
"""The largest price the harness scores or stores: $1,000,000. The benchmark's
prices are under $1,000; a guess or a truth far above is a broken value, and
one of 1e308 made every mean error infinite."""


def price_problem(value: Any) -> str | None:
    """Why ``value`` cannot be scored as a price (not a number, not finite,
    negative, above ``MAX_PRICE``), or None when it can."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"price {value!r} is not a number"
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return f"price of ~{int(value.bit_length() * 0.30103)} digits is above the " \
            f"${MAX_PRICE:,.0f} limit"
    if not math.isfinite(number):
        return f"non-finite price {value}"
    if number < 0:
        return f"negative price {value}"
    if number > MAX_PRICE:
        return f"price {number:.6g} is above the ${MAX_PRICE:,.0f} limit"
    return None


@dataclass(frozen=True)
class Prediction:
    """One answer. ``price is None`` means no answer, with ``error`` saying why.

    ``served_by``: which of several servers (replicas) produced it, as a URL
    without credentials; None for one server or none."""

    price: float | None
    raw: str | None = None
    error: str | None = None
    latency_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    served_by: str | None = None

    @classmethod
    def failed(cls, error: str, raw: str | None = None, **extra: Any) -> Prediction:
        return cls(price=None, error=error, raw=raw, **extra)

    @classmethod
    def of(cls, value: Any) -> Prediction:
        """What a price function returned, as a Prediction: a Prediction as it is,
        ``None`` as no answer, anything else as its price (``True`` is no $1 guess:
        true/false is no answer, with that reason)."""
        if isinstance(value, Prediction):
            return value
        if value is None:
            return cls.failed("no answer")
        if isinstance(value, bool):
            return cls.failed(f"returned {value!r}, not a price")
        try:
            return cls(price=float(value))
        except OverflowError:  # an int beyond any float
            return cls.failed(price_problem(value) or "price too large")


@dataclass(frozen=True)
class Example:
    """A training row: the product as a predictor would see it, plus its price."""

    product: Product
    price: float


@runtime_checkable
class Predictor(Protocol):
    """Anything that prices products, in order, one Prediction per Product.

    That is all a predictor must have. Every optional capability is declared
    once, with its meaning and its default, on :class:`BasePredictor`; the
    harness reads them only through :func:`capabilities`, so a predictor may
    subclass ``BasePredictor`` or simply define the methods it has (duck
    typing). ``bench.testing.check_predictor`` checks one against this contract.
    """

    name: str

    def predict(self, products: Sequence[Product]) -> Sequence[Prediction]: ...


class BasePredictor:
    """Optional base class: every optional capability, with its documented default.

    Subclass it and override what your predictor has; the harness treats a
    predictor that does not subclass it but defines the same names the same way.

    - ``predict(products)``: one Prediction per Product, in order. The default
      calls ``predict_one`` on each product in turn.
    - ``predict_one(product)``: per-item prediction. When defined, the runner
      fans it out over a thread pool (``--concurrency``, else
      ``default_concurrency``) instead of calling ``predict`` in chunks.
      Absent by default.
    - ``batch_size``: the chunk size for ``predict`` (``None``: all at once).
    - ``default_concurrency``: threads for ``predict_one`` when ``--concurrency``
      is not given (``None``: the runner's default).
    - ``item_timeout_s``: seconds one item may take before the runner records
      it as no answer ("timed out after N s") and goes on (a ``predict`` chunk
      gets this times its size); ``--timeout`` overrides it (``None``: the
      runner's default, ``bench.runner.DEFAULT_ITEM_TIMEOUT_S``).
    - ``seed``: the seed of its randomness, recorded in ``run.json`` (``None``:
      nothing to record).
    - ``unavailable()``: why it cannot run here (no key, no GPU, a missing
      file), or ``None`` when it can. Must be cheap: ``bench list`` calls it.
    - ``fingerprint()``: a JSON-able dict of what identifies its outputs (model,
      parameters, data digests); a different fingerprint is a different run
      folder. Default ``{}``; ``None`` is taken as ``{}``.
    - ``prepare()``: load weights or files, called once and only when items are
      left to predict. May raise ``BenchError``. Default: nothing.
    - ``estimate(products)``: for ``--dry-run``, a dict with ``requests``,
      ``input_tokens``, ``output_tokens`` and ``cost_usd`` (``None`` when
      unknown), sending nothing. Default ``None``: local, sends no requests.
    - ``fit(examples)``: train on ``Example`` rows (``bench train``). Absent by
      default: the predictor is not trainable.
    - ``training_examples()``: the rows ``fit`` should use. Default ``None``:
      the context's training pool.
    - ``run_details()``: a JSON-able dict the predictor reports about itself once
      prepared (an ensemble's weights), kept in ``run.json`` as ``details`` and
      shown by ``bench show``; asked again when the predicting ends, so it may
      also say how that went (replicas). Default ``None``: nothing to report.
    """

    name: str = ""
    batch_size: int | None = None
    default_concurrency: int | None = None
    item_timeout_s: float | None = None
    seed: int | None = None

    def predict(self, products: Sequence[Product]) -> Sequence[Prediction]:
        return [self.predict_one(p) for p in products]

    def predict_one(self, product: Product) -> Prediction:
        raise NotImplementedError(f"{type(self).__name__} predicts in batches only")

    def unavailable(self) -> str | None:
        return None

    def fingerprint(self) -> dict[str, Any]:
        return {}

    def prepare(self) -> None:
        return None

    def estimate(self, products: Sequence[Product]) -> dict[str, Any] | None:
        return None

    def fit(self, examples: Sequence[Example]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} is not trainable")

    def training_examples(self) -> Sequence[Example] | None:
        return None

    def run_details(self) -> dict[str, Any] | None:
        return None


# The placeholders above that mean "this capability is absent".
_ABSENT = {"predict_one": BasePredictor.predict_one, "fit": BasePredictor.fit}


@dataclass(frozen=True)
class Capabilities:
    """A predictor's optional capabilities, each resolved with its documented
    default, whether or not the predictor subclasses :class:`BasePredictor`.
    The one way the runner and the CLI reach them."""

    predictor: Any

    def _method(self, name: str) -> Callable[..., Any] | None:
        method = getattr(self.predictor, name, None)
        if not callable(method):
            return None
        absent = _ABSENT.get(name)
        if absent is not None and getattr(type(self.predictor), name, None) is absent:
            return None
        return method

    def _int(self, name: str) -> int | None:
        value = getattr(self.predictor, name, None)
        return int(value) if value else None

    @property
    def predict_one(self) -> Callable[[Product], Prediction] | None:
        """The per-item method, or None for a batch predictor."""
        return self._method("predict_one")

    @property
    def fit(self) -> Callable[[Sequence[Example]], Any] | None:
        """The training method, or None when the predictor is not trainable."""
        return self._method("fit")

    @property
    def batch_size(self) -> int | None:
        return self._int("batch_size")

    @property
    def default_concurrency(self) -> int | None:
        return self._int("default_concurrency")

    @property
    def item_timeout_s(self) -> float | None:
        """Seconds one item may take, or None for the runner's default."""
        value = getattr(self.predictor, "item_timeout_s", None)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            return None
        return float(value)

    @property
    def seed(self) -> Any:
        return getattr(self.predictor, "seed", None)

    def unavailable(self) -> str | None:
        method = self._method("unavailable")
        return method() if method else None

    def fingerprint(self) -> dict[str, Any]:
        method = self._method("fingerprint")
        body = method() if method else None
        return dict(body) if body else {}

    def prepare(self) -> None:
        method = self._method("prepare")
        if method:
            method()

    def estimate(self, products: Sequence[Product]) -> dict[str, Any] | None:
        method = self._method("estimate")
        return method(products) if method else None

    def training_examples(self) -> Sequence[Example] | None:
        method = self._method("training_examples")
        return method() if method else None

    def run_details(self) -> dict[str, Any] | None:
        method = self._method("run_details")
        body = method() if method else None
        return dict(body) if body else None


def capabilities(predictor: Any) -> Capabilities:
    """The view through which the harness reads ``predictor``'s optional hooks."""
    return Capabilities(predictor)
