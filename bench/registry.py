"""Predictors by name: built-ins, ``@register``-ed classes, ``@price_predictor``
functions, and third-party packages through the ``bench.predictors`` entry points.

A spec is ``NAME`` or ``NAME:VARIANT``; other parameters arrive as strings
(``--param KEY=VALUE``) and are converted by the annotations of the factory's
``__init__``, scikit-learn style: parameters live in the constructor.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.types import Prediction, Predictor, Product

ENTRY_POINT_GROUP = "bench.predictors"
# Extra modules to import for their @register/@price_predictor decorators,
# comma-separated: predictors in a plain file, without packaging.
PLUGINS_ENV = "BENCH_PLUGINS"
KINDS = ("person", "classic", "frontier", "local-llm", "reference", "ensemble", "custom")
# Built-in predictor modules: imported to run their @register decorators. Each
# imports its heavy libraries lazily, so listing never loads torch or sklearn.
BUILTIN_MODULES = (
    "predictors.human",
    "predictors.reference",
    "predictors.classic",
    "predictors.frontier",
    "predictors.qlora",
    "predictors.retrieval",
    "predictors.ensemble",
)


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any]
    kind: str = "custom"
    variant_param: str | None = None
    # Variants that `run all` expands to (e.g. every recorded reference run).
    variants: Callable[[Any], list[str]] | None = None
    summary: str = ""


_REGISTRY: dict[str, Entry] = {}
_loaded = False


def register(
    name: str,
    *,
    kind: str = "custom",
    variant: str | None = None,
    variants: Callable[[Any], list[str]] | None = None,
    summary: str | None = None,
) -> Callable[[Any], Any]:
    """Class (or factory) decorator: make a Predictor available by ``name``.

    ``variant`` names the constructor parameter that ``NAME:VARIANT`` sets.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")

    def decorate(factory: Any) -> Any:
        doc = summary if summary is not None else (inspect.getdoc(factory) or "")
        _REGISTRY[name] = Entry(name, factory, kind, variant, variants, doc.split("\n")[0])
        factory.__bench_name__ = name
        return factory

    return decorate


class FunctionPredictor:
    """A per-item Predictor made from ``def f(product) -> float``."""

    def __init__(self, name: str, fn: Callable[..., Any], params: dict[str, Any]):
        self.name = name
        self._fn = fn
        self._params = params

    def predict_one(self, product: Product) -> Prediction:
        value = self._fn(product, **self._params)
        if isinstance(value, Prediction):
            return value
        if value is None:
            return Prediction.failed("no answer")
        return Prediction(price=float(value))

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        return [self.predict_one(p) for p in products]

    def fingerprint(self) -> dict[str, Any]:
        try:
            source = inspect.getsource(self._fn)
        except (OSError, TypeError):
            source = self._fn.__qualname__
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        return {"function": f"{self._fn.__module__}.{self._fn.__qualname__}",
                "source_sha256": digest, "params": self._params}


def price_predictor(
    name: str | None = None, *, kind: str = "custom", summary: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn ``def f(product, **params) -> float | None`` into a registered
    per-item Predictor (the runner runs it on a thread pool)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        label = name or fn.__name__.replace("_", "-")
        signature = inspect.signature(fn)

        def factory(**params: Any) -> FunctionPredictor:
            return FunctionPredictor(label, fn, params)

        # Parameters after `product` become --param options, typed as in `fn`.
        factory.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=list(signature.parameters.values())[1:]
        )
        factory.__annotations__ = {
            k: v for k, v in typing.get_type_hints(fn).items() if k not in ("product", "return")
        }
        register(label, kind=kind, summary=summary or (inspect.getdoc(fn) or ""))(factory)
        fn.__bench_name__ = label  # type: ignore[attr-defined]
        return fn

    return decorate


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a missing dependency inside it is a real error
                raise
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise BenchError(f"{PLUGINS_ENV}: cannot import {module!r}: {exc}") from None
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break the harness
            _REGISTRY.setdefault(
                ep.name, Entry(ep.name, _broken(ep.name, exc), "custom", summary="(failed to load)")
            )
            continue
        if ep.name in _REGISTRY:
            continue
        registered = getattr(obj, "__bench_name__", None)
        if registered in _REGISTRY:
            _REGISTRY[ep.name] = replace(_REGISTRY[registered], name=ep.name)
        elif callable(obj):
            register(ep.name)(obj)


def _broken(name: str, exc: Exception) -> Callable[..., Any]:
    def factory(**_: Any) -> Any:
        raise BenchError(f"predictor {name!r} (entry point) failed to import: {exc}")

    return factory


def entries() -> dict[str, Entry]:
    _load()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> Entry:
    table = entries()
    if name not in table:
        known = ", ".join(table)
        raise BenchError(f"unknown predictor {name!r}; known: {known}")
    return table[name]


def parse_spec(spec: str) -> tuple[str, str | None]:
    name, _, variant = spec.partition(":")
    if not name:
        raise BenchError(f"bad predictor spec {spec!r}: expected NAME or NAME:VARIANT")
    return name, (variant or None)


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BenchError(f"bad --param {pair!r}: expected KEY=VALUE")
        params[key.strip()] = value
    return params


def build(spec: str, params: dict[str, str] | None = None, ctx: Any = None) -> Predictor:
    """Instantiate ``NAME[:VARIANT]`` with string parameters converted by type."""
    name, variant = parse_spec(spec)
    entry = get(name)
    raw = dict(params or {})
    if variant is not None:
        if entry.variant_param is None:
            raise BenchError(f"predictor {name!r} takes no variant (got {spec!r})")
        raw[entry.variant_param] = variant
    kwargs = _convert(entry, raw)
    if "ctx" in inspect.signature(entry.factory).parameters:
        kwargs["ctx"] = ctx
    try:
        predictor = entry.factory(**kwargs)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"predictor {spec!r}: {exc}") from exc
    if not getattr(predictor, "name", None):
        predictor.name = spec
    return predictor


def _convert(entry: Entry, raw: dict[str, str]) -> dict[str, Any]:
    signature = inspect.signature(entry.factory)
    accepted = {
        n: p for n, p in signature.parameters.items()
        if n not in ("self", "ctx") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    try:
        target = entry.factory.__init__ if inspect.isclass(entry.factory) else entry.factory
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in accepted and not takes_any:
            options = ", ".join(accepted) or "none"
            raise BenchError(f"predictor {entry.name!r} has no parameter {key!r} "
                             f"(parameters: {options})")
        out[key] = _coerce(entry.name, key, value, hints.get(key))
    return out


def _coerce(predictor: str, key: str, value: str, hint: Any) -> Any:
    if not isinstance(value, str):
        return value
    types = [t for t in typing.get_args(hint) if t is not type(None)] if typing.get_args(hint) \
        else [hint]
    if value.lower() in ("none", "null") and type(None) in typing.get_args(hint):
        return None
    for target in types:
        try:
            if target is bool:
                lowered = value.lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if target is int:
                return int(value)
            if target is float:
                return float(value)
            if target is Path:
                return Path(value).expanduser()
        except ValueError:
            continue
        if target is str or target is None or target is Any:
            return value
    if any(t in (int, float, bool) for t in types) and str not in types:
        expected = "/".join(getattr(t, "__name__", str(t)) for t in types)
        raise BenchError(f"predictor {predictor!r}: parameter {key}={value!r} is not a {expected}")
    return value
