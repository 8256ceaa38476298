"""Checking a predictor against the contract: ``check_predictor(predictor)``.

The counterpart of scikit-learn's ``check_estimator``, for plugin authors and
for the built-ins' own tests::

    from bench.testing import check_predictor

    def test_my_predictor_keeps_the_contract():
        check_predictor(MyModel())

It prepares the predictor and runs it on a few real-looking products (or the
ones you pass), and checks: ``name`` is a non-empty string; ``unavailable()``
returns a string or None; ``fingerprint()`` is a JSON-able dict (or None),
the same on every call; ``predict`` returns one ``Prediction`` per product, in
order (a permuted list gets the permuted answers when the predictor is
deterministic), for an empty list too; each price is None (with an error
saying why) or a finite number >= 0; ``predict_one``, when present, agrees
with ``predict``; and the products handed over are not changed. Products carry
no price by construction, so nothing the predictor is given can leak the truth.
Every failure found is reported in one ``ContractError`` (an ``AssertionError``),
one line each.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from bench import prompts
from bench.types import (
    MAX_PRICE,
    Prediction,
    Product,
    ReadOnlyError,
    capabilities,
    price_problem,
)

# Prices that differ by less than this (relative) count as the same answer.
TOLERANCE = 1e-3


class ContractError(AssertionError):
    """A predictor breaks the contract; the message lists each failure on a line."""


def sample_products() -> list[Product]:
    """A few products as the runner hands them over: real-looking text, no price."""
    raw = [
        (9001, "Automotive", "Brake Pad Set, Front, Ceramic, for 2012-2018 Honda Civic",
         "Low-dust ceramic formulation with shims and hardware included. Quiet stops, "
         "long life, OE fit. Brand: StopWell. Item weight: 4.2 pounds."),
        (9002, "Electronics", "USB-C Hub 7-in-1 with 4K HDMI, 100W Power Delivery",
         "Aluminium hub: HDMI 4K@30Hz, 2 USB-A 3.0, SD and microSD readers, USB-C PD "
         "pass-through. Works with laptops and tablets. Brand: Portly."),
        (9003, "Tools_and_Home_Improvement", "Cordless Drill Driver Kit, 20V, 2 Batteries",
         "Half-inch keyless chuck, 2-speed gearbox, LED light, 24 clutch settings, charger "
         "and carrying case. Brand: Torqer. Item weight: 3.5 pounds."),
        (9004, "Musical_Instruments", "Digital Piano 88 Weighted Keys with Stand",
         "Full-size hammer-action keyboard, 128-voice polyphony, 10 voices, headphone jack, "
         "sustain pedal, Bluetooth MIDI. Brand: Keyla."),
        (9005, "Office_Products", "Gel Ink Pens, 0.7 mm, Black, 12 Pack",
         "Smooth quick-drying gel ink, comfortable grip, retractable. Brand: Inkly."),
    ]
    out = []
    for item_id, category, title, body in raw:
        description = f"{title}\n{body}"
        prompt = f"{prompts.QUESTION}\n\n{description}\n\n{prompts.PRICE_PREFIX}"
        out.append(Product(id=item_id, title=title, description=description, prompt=prompt,
                           category=category, details={"Brand": body.rsplit("Brand: ", 1)[-1]
                                                       .split(".")[0]}))
    return out


def check_predictor(predictor: Any, products: Sequence[Product] | None = None, *,
                    require_available: bool = True) -> None:
    """Raise ``ContractError`` listing every way ``predictor`` breaks the contract.

    ``products`` defaults to :func:`sample_products`; pass test-set products
    for predictors that only know those (a person's sheet, a recorded run).
    A predictor that says it cannot run here fails unless ``require_available``
    is false, in which case only its name, ``unavailable()`` and
    ``fingerprint()`` are checked.
    """
    label = repr(getattr(predictor, "name", None) or type(predictor).__name__)
    failures: list[str] = []
    try:
        _check(predictor, list(products) if products is not None else sample_products(),
               require_available, failures)
    except _Stop:
        pass
    if failures:
        lines = "\n".join(f"  - {f}" for f in failures)
        raise ContractError(f"predictor {label} breaks the predictor contract:\n{lines}")


class _Stop(Exception):
    """A failure after which the remaining checks cannot run."""


def _check(predictor: Any, products: list[Product], require_available: bool,
           failures: list[str]) -> None:
    def fail(message: str, fatal: bool = False) -> None:
        failures.append(message)
        if fatal:
            raise _Stop

    name = getattr(predictor, "name", None)
    if not isinstance(name, str) or not name:
        fail(f"name must be a non-empty string, not {name!r}")
    if not callable(getattr(predictor, "predict", None)):
        fail("has no predict(products) method", fatal=True)
    if not products or not all(type(p) is Product for p in products):
        raise TypeError("check_predictor needs a non-empty list of bench.types.Product")

    reason = _call(fail, "unavailable()", getattr(predictor, "unavailable", lambda: None))
    if reason is not None and not isinstance(reason, str):
        fail(f"unavailable() must return a string or None, not {type(reason).__name__}")
        reason = None
    fingerprint = _fingerprint(predictor, fail)
    if reason is not None:
        if require_available:
            fail(f"cannot check predictions: unavailable here ({reason})", fatal=True)
        return

    hooks = capabilities(predictor)
    _call(fail, "prepare()", hooks.prepare, fatal=True)
    before = [_snapshot(p) for p in products]

    first = _predict(predictor, products, fail, "predict(products)")
    again = _predict(predictor, products, fail, "predict(products), asked again")
    deterministic = all(_same(a.price, b.price) for a, b in zip(first, again, strict=True))
    if deterministic:
        order = list(range(len(products)))[::-1]
        if len(order) > 2:  # a rotation as well as a reversal
            order = order[1:] + order[:1]
        permuted = _predict(predictor, [products[i] for i in order], fail,
                            "predict(permuted products)")
        for at, (i, got) in enumerate(zip(order, permuted, strict=True)):
            if not _same(got.price, first[i].price):
                fail(f"order: product id {products[i].id} got {got.price!r} at position {at} "
                     f"of a permuted list but {first[i].price!r} at position {i}: "
                     "predictions must follow the products' order")
                break
    empty = _call(fail, "predict([])", lambda: list(predictor.predict([])))
    if empty is not None and empty != []:
        fail(f"predict([]) must return no predictions, returned {len(empty)}")

    if hooks.predict_one is not None:
        for product, expected in zip(products, first, strict=True):
            one = _call(fail, f"predict_one(product {product.id})", hooks.predict_one,
                        product)
            if one is None:
                break
            if not _valid(one, f"predict_one(product {product.id})", fail):
                break
            if deterministic and not _same(one.price, expected.price):
                fail(f"predict_one(product {product.id}) gave {one.price!r} but "
                     f"predict() gave {expected.price!r} for it")
                break

    for product, snapshot in zip(products, before, strict=True):
        if _snapshot(product) != snapshot:
            fail(f"changed product {product.id} it was given (its details): "
                 "predictors must not modify their input")
            break
    if fingerprint is not None:
        after = _fingerprint(predictor, fail)
        if after is not None and after != fingerprint:
            fail("fingerprint() changed after predicting: it must identify the outputs, "
                 "not the predictor's state")


def _call(fail: Callable[..., None], what: str, fn: Callable[..., Any], *args: Any,
          fatal: bool = False) -> Any:
    try:
        return fn(*args)
    except ReadOnlyError as exc:  # products are read-only: the attempt is the finding
        fail(f"changed product {exc.product_id} it was given (its details, in {what}): "
             "predictors must not modify their input", fatal=fatal)
        return None
    except Exception as exc:
        fail(f"{what} raised {type(exc).__name__}: {exc}", fatal=fatal)
        return None


def _fingerprint(predictor: Any, fail: Callable[..., None]) -> str | None:
    """The fingerprint as canonical JSON (None when it cannot be checked)."""
    method = getattr(predictor, "fingerprint", None)
    if method is None:
        return "{}"
    texts = []
    for _ in range(2):
        value = _call(fail, "fingerprint()", method)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            fail(f"fingerprint() must return a dict, not {type(value).__name__}")
            return None
        try:
            texts.append(json.dumps(value, sort_keys=True))
        except (TypeError, ValueError) as exc:
            fail(f"fingerprint() must be JSON-serialisable: {exc}")
            return None
    if texts[0] != texts[1]:
        fail(f"fingerprint() is not stable: {texts[0]} then {texts[1]}")
        return None
    return texts[0]


def _predict(predictor: Any, products: list[Product], fail: Callable[..., None],
             what: str) -> list[Prediction]:
    out = _call(fail, what, predictor.predict, list(products), fatal=True)
    try:
        out = list(out)
    except TypeError:
        fail(f"{what} must return a sequence, not {type(out).__name__}", fatal=True)
    if len(out) != len(products):
        fail(f"{what} returned {len(out)} predictions for {len(products)} products: "
             "one Prediction per Product", fatal=True)
    for i, prediction in enumerate(out):
        if not _valid(prediction, f"{what}[{i}]", fail):
            raise _Stop
    return out


def _valid(prediction: Any, what: str, fail: Callable[..., None]) -> bool:
    if not isinstance(prediction, Prediction):
        fail(f"{what} is a {type(prediction).__name__}, not a bench.Prediction")
        return False
    price = prediction.price
    if price is None:
        if not isinstance(prediction.error, str) or not prediction.error:
            fail(f"{what} has no price and no error: say why there is no answer "
                 "(Prediction.failed(reason))")
            return False
        return True
    if isinstance(price, bool) or not isinstance(price, int | float):
        fail(f"{what} has price {price!r}: a number or None")
        return False
    if price_problem(price) is not None:
        fail(f"{what} has price {price!r}: a finite number >= 0 (at most "
             f"{MAX_PRICE:,.0f}), or None with an error")
        return False
    return True


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def _snapshot(product: Product) -> tuple[Any, ...]:
    return tuple(copy.deepcopy(getattr(product, f.name)) for f in fields(product))
