"""Predictors by name: built-ins, ``@register``-ed classes, ``@price_predictor``
functions, and third-party packages through the ``bench.predictors`` entry points.

A spec is ``NAME`` or ``NAME:VARIANT``; other parameters arrive as strings
(``--param KEY=VALUE``) and are converted by the annotations of the factory's
``__init__``, scikit-learn style: parameters live in the constructor. ``run
all`` expands to every registered predictor and its variants, and routes each
``--param`` to the predictors that take it (``expand``, ``build_all``).

A name belongs to one object: registering a different object under a taken
name is a ``BenchError`` naming both sources, and an entry point that claims a
taken name (or fails to import) is listed as failed to load, with its reason,
instead of silently replacing a predictor or breaking the rest of the list.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from bench.errors import BenchError, did_you_mean
from bench.escape import check_name, visible
from bench.functions import check_params, settle, unknown_parameter
from bench.identity import Identity, identify, warn_opaque
from bench.kinds import KINDS
from bench.types import BasePredictor, Prediction, Predictor, Product

ENTRY_POINT_GROUP = "bench.predictors"
# Extra modules to import for their @register/@price_predictor decorators,
# comma-separated: predictors in a plain file, without packaging.
PLUGINS_ENV = "BENCH_PLUGINS"
# Built-in predictor modules: imported to run their @register decorators. Each
# imports its heavy libraries lazily, so listing never loads torch or sklearn.
BUILTIN_MODULES = (
    "predictors.human",
    "predictors.reference",
    "predictors.classic",
    "predictors.frontier",
    "predictors.qlora",
    "predictors.retrieval",
    "predictors.members",
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
    # Where it came from (module.qualname, or the entry point), for error messages.
    source: str = ""
    # The object registered (the class, or the function behind @price_predictor):
    # registering the same object again is fine, a different one is an error.
    origin: Any = field(default=None, compare=False, repr=False)
    # Why this name cannot be built (a plugin failed to load, or claims a taken name).
    problem: str | None = None
    # False: run only when named (not by `run all`): e.g. a model whose figures are
    # not the same bytes on every CPU, which the published board must not hold.
    in_all: bool = True


_REGISTRY: dict[str, Entry] = {}
_loaded = False


def register(
    name: str,
    *,
    kind: str = "custom",
    variant: str | None = None,
    variants: Callable[[Any], list[str]] | None = None,
    summary: str | None = None,
    in_all: bool = True,
) -> Callable[[Any], Any]:
    """Class (or factory) decorator: make a Predictor available by ``name``.

    ``variant`` names the constructor parameter that ``NAME:VARIANT`` sets;
    ``in_all=False``: run only when named, never by ``run all``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")

    def decorate(factory: Any) -> Any:
        doc = summary.split("\n")[0] if summary is not None else _summary(factory)
        _add(Entry(name, factory, kind, variant, variants, doc,
                   source=_source_of(factory), origin=factory, in_all=in_all))
        factory.__bench_name__ = name
        return factory

    return decorate


def _summary(obj: Any) -> str:
    """The first line of ``obj``'s docstring (a class's own or a subclass's base's,
    never the generic one of ``BasePredictor``)."""
    for holder in (obj.__mro__ if inspect.isclass(obj) else (obj,)):
        if holder in (BasePredictor, object):
            break
        doc = inspect.getdoc(holder) if not inspect.isclass(holder) else holder.__doc__
        if doc:
            return inspect.cleandoc(doc).split("\n")[0]
    return ""


def _source_of(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _check_registered(name: str) -> str:
    """``name`` when it can be registered: one line of visible text
    (``escape.check_name``) without a colon, which would split it as NAME:VARIANT."""
    check_name(name)
    if ":" in name:
        raise BenchError(f"predictor name {visible(name)!r} holds a colon: `bench run "
                         "NAME:VARIANT` splits there, so it could never be run "
                         "(choose a name without one)")
    return name


def _add(entry: Entry) -> None:
    """Register ``entry``; a different object under a taken name, or a name that is
    not one line of visible text or holds a colon (``_check_registered``), is an error."""
    _check_registered(entry.name)
    existing = _REGISTRY.get(entry.name)
    if existing is not None and existing.origin is not entry.origin:
        raise BenchError(f"predictor name {entry.name!r} is already registered by "
                         f"{existing.source}; cannot register {entry.source} under it "
                         "(choose another name)")
    _REGISTRY[entry.name] = entry


class FunctionPredictor(BasePredictor):
    """A per-item Predictor made from ``def f(product) -> float`` (``predict`` is
    the base's: ``predict_one`` on each product; an ``async def`` is awaited).

    Its fingerprint holds its source and, when it reads any, the plain outside
    values it reads (``bench.identity``): a changed module constant is a new run."""

    def __init__(self, name: str, fn: Callable[..., Any], params: dict[str, Any]):
        check_params(name, fn, params)
        self.name = name
        self._fn = fn
        self._params = params
        self._identity: Identity | None = None

    def predict_one(self, product: Product) -> Prediction:
        return Prediction.of(settle(self._fn(product, **self._params)))

    def fingerprint(self) -> dict[str, Any]:
        try:
            source = inspect.getsource(self._fn)
        except (OSError, TypeError):
            source = self._fn.__qualname__
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        out = {"function": f"{self._fn.__module__}.{self._fn.__qualname__}",
               "source_sha256": digest, "params": self._params}
        if self._identity is None:  # once: the warning, if any, is said once
            self._identity = identify(self._fn)
            warn_opaque(self.name, self._fn, self._identity.opaque)
        if self._identity.reads is not None:  # absent when none: older runs keep their folder
            out["reads_sha256"] = self._identity.reads
        return out


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
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        doc = summary.split("\n")[0] if summary else _summary(fn)
        _add(Entry(label, factory, kind, summary=doc, source=_source_of(fn),
                   origin=fn))
        factory.__bench_name__ = label  # type: ignore[attr-defined]
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
        _import_plugin(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _load_entry_point(ep.name, ep.value, ep.load)


def _import_plugin(module: str) -> None:
    """One ``BENCH_PLUGINS`` entry: a module name, found in the current folder too
    (the ``bench`` script and ``python -m bench`` alike), or a ``.py`` file path."""
    try:
        if module.endswith(".py") or os.sep in module or "/" in module:
            path = Path(module).expanduser().resolve()
            if not path.is_file():
                raise BenchError(f"{PLUGINS_ENV}: no such file {module!r}")
            name = f"bench_plugin_{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise BenchError(f"{PLUGINS_ENV}: cannot import {module!r}: not a Python file")
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[name] = loaded
            spec.loader.exec_module(loaded)
            return
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())  # after the installed packages: never shadows them
        importlib.import_module(module)
    except ImportError as exc:
        raise BenchError(f"{PLUGINS_ENV}: cannot import {module!r}: {exc}") from None


def _load_entry_point(name: str, value: str, load: Callable[[], Any]) -> None:
    """Register one ``bench.predictors`` entry point; a broken or clashing one is
    kept as a failed entry (``bench list`` shows why), never raised."""
    source = f"entry point {visible(name)} = {visible(value)}"
    try:
        _check_registered(name)
    except BenchError as exc:
        _fail(visible(name), source, str(exc))
        return
    try:
        obj = load()
    except Exception as exc:  # a broken plugin must not break the harness
        _fail(name, source, f"predictor {name!r} (entry point) failed to import: {exc}")
        return
    registered = getattr(obj, "__bench_name__", None)
    entry = _REGISTRY.get(registered) if isinstance(registered, str) else None
    origin = entry.origin if entry is not None else obj
    existing = _REGISTRY.get(name)
    if existing is not None:
        if existing.origin is not origin:
            _fail(name, source, f"predictor name {name!r} is taken twice: {existing.source} "
                                f"and {source} (uninstall or rename one)")
        return
    if entry is not None:  # registered by its module's decorator under another name
        _REGISTRY[name] = replace(entry, name=name, source=source)
    elif callable(obj):
        _add(Entry(name, obj, "custom", summary=_summary(obj),
                   source=source, origin=obj))
        obj.__bench_name__ = name
    else:
        _fail(name, source, f"predictor {name!r} ({source}) is not a class or function")


def _fail(name: str, source: str, problem: str) -> None:
    existing = _REGISTRY.get(name)
    if existing is None:
        _REGISTRY[name] = Entry(name, _broken(problem), "custom", summary="(failed to load)",
                                source=source, problem=problem)
    else:
        _REGISTRY[name] = replace(existing, problem=problem)


def _broken(problem: str) -> Callable[..., Any]:
    def factory(**_: Any) -> Any:
        raise BenchError(problem)

    return factory


def entries() -> dict[str, Entry]:
    _load()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> Entry:
    table = entries()
    if name not in table:
        raise BenchError(f"unknown predictor {name!r} ({did_you_mean(name, table)})")
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


def _readable(text: str, what: str) -> None:
    """BenchError unless ``text`` can be written as UTF-8: a non-UTF-8 byte in an
    argument arrives as a lone surrogate, which no result file can hold faithfully."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
        raise BenchError(f"{what} {shown[:80]!r} is not UTF-8 text") from None


def build(spec: str, params: dict[str, str] | None = None, ctx: Any = None) -> Predictor:
    """Instantiate ``NAME[:VARIANT]`` with string parameters converted by type."""
    _readable(spec, "predictor")
    for key, value in (params or {}).items():
        _readable(str(key), "parameter name")
        if isinstance(value, str):
            _readable(value, f"parameter {key}")
    name, variant = parse_spec(spec)
    entry = get(name)
    if entry.problem:
        raise BenchError(entry.problem)
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
    check_name(predictor.name)
    return predictor


def expand(ctx: Any = None) -> list[tuple[str, Entry]]:
    """Each registered predictor as a spec, expanded to its variants
    (``reference:<run>``): what ``run all`` runs and ``bench list`` lists."""
    out = []
    for name, entry in entries().items():
        variants = entry.variants(ctx) if entry.variants else []
        out += [(f"{name}:{v}", entry) for v in variants] if variants else [(name, entry)]
    return out


def specs(requested: Sequence[str], ctx: Any = None) -> list[str]:
    """The specs to run: ``requested``, or every one for ``["all"]``. A bare
    NAME of a predictor with listed variants (``reference``) is every variant
    found here (none found: the bare name, whose own reason says why)."""
    if list(requested) == ["all"]:
        return [spec for spec, entry in expand(ctx) if entry.in_all]
    if "all" in requested:
        raise BenchError("'all' cannot be combined with other predictor names")
    out: list[str] = []
    for spec in requested:
        name, variant = parse_spec(spec)
        entry = get(name)
        found = entry.variants(ctx) if entry.variants and variant is None else []
        out += [f"{name}:{v}" for v in found] if found else [spec]
    return out


def accepts(spec: str, key: str) -> bool:
    """Whether the predictor named by ``spec`` takes the parameter ``key``."""
    entry = get(parse_spec(spec)[0])
    parameters = inspect.signature(entry.factory).parameters
    return key in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def params_for(spec: str, params: dict[str, str], everything: bool = True) -> dict[str, str]:
    """The parameters meant for ``spec``: ``NAME.key=value`` goes to the predictor
    named NAME (or the spec ``NAME:VARIANT``) only; an unscoped ``key`` goes to
    every predictor that takes it (``everything=False``: to every one)."""
    name = parse_spec(spec)[0]
    out = {}
    for key, value in params.items():
        target, dot, own = key.rpartition(".")
        if dot and target:
            if target in (spec, name):
                out[own] = value
        elif not everything or accepts(spec, key):
            out[key] = value
    return out


def _scoped(key: str, chosen: Sequence[str]) -> bool:
    """Whether ``key`` is ``NAME.key`` naming one of the chosen predictors."""
    target, dot, _ = key.rpartition(".")
    return bool(dot and target) and any(target in (s, parse_spec(s)[0]) for s in chosen)


def build_all(requested: Sequence[str], params: dict[str, str], ctx: Any = None,
              skipped: list[tuple[str, str]] | None = None,
              ) -> list[tuple[str, Predictor, dict[str, str]]]:
    """Build each requested spec (``["all"]``: every one) with its own parameters:
    ``(spec, predictor, params)``. ``NAME.key=value`` goes to NAME only; an
    unscoped key goes to the predictors that take it, and is an error only when
    none does (one predictor alone: its own error names its parameters). With a
    ``skipped`` list, a spec that cannot be built (a ``BenchError``) is added to
    it as ``(spec, reason)`` instead of raising."""
    chosen = specs(requested, ctx)
    for key in params:
        target, dot, own = key.rpartition(".")
        if dot and target:
            if not _scoped(key, chosen):
                raise BenchError(f"--param {key}: no predictor {target!r} in this run "
                                 f"({', '.join(chosen)})")
            if not any(accepts(s, own) for s in chosen if target in (s, parse_spec(s)[0])):
                raise BenchError(f"--param {key}: predictor {target!r} has no parameter "
                                 f"{own!r}")
        elif len(chosen) > 1 and not any(accepts(s, key) for s in chosen):
            raise BenchError(f"no predictor takes the parameter {key!r}")
    built = []
    for spec in chosen:
        own = params_for(spec, params, len(chosen) > 1)
        try:
            built.append((spec, build(spec, own, ctx), own))
        except BenchError as exc:
            if skipped is None:
                raise
            skipped.append((spec, str(exc)))
    return built


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
            raise BenchError(unknown_parameter(entry.name, key, accepted))
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
        article = "an" if expected[:1] in "aeiou" else "a"
        raise BenchError(f"predictor {predictor!r}: parameter {key}={value!r} is not "
                         f"{article} {expected}")
    return value
