"""A plain notebook function as a Predictor, with an identity that follows its code.

``bench.evaluate(f)`` accepts ``def f(product: Product) -> float`` or, as in the
course's notebooks, ``def f(prompt: str) -> float`` (the canonical test prompt,
ending ``Price is $``). Which one is decided by the first parameter: annotated
``str`` -> the prompt text; annotated ``Product`` -> the product; unannotated,
a parameter named ``prompt`` or ``text`` -> the prompt text, anything else ->
the product. ``takes="prompt" | "product"`` overrides the rule.

Identity: the run's name is ``name=`` or the function's name (``_`` -> ``-``);
its fingerprint (and so its run folder) holds the input kind, the parameters,
a digest of the function's code and one of the plain outside values it reads
(module globals, closure cells, defaults, a bound object's state):
``bench.identity`` says what counts. So re-evaluating the same function resumes
its run and asks nothing again, and an edited function, or one whose global
``K`` changed, is a new run with its own figures. Outside values that cannot be
digested (an object, a model) are named in one ``IdentityWarning``: pass them
as ``params`` instead, or name the run.

Parameters are checked against the function's signature before anything
runs (as ``bench run`` checks ``--param``), and an ``async def`` function is
awaited, on each worker thread's own event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from bench.errors import BenchError
from bench.escape import check_name
from bench.identity import code_digest, identify, warn_opaque
from bench.types import BasePredictor, Prediction, Product

__all__ = ["NotebookFunction", "Takes", "check_params", "code_digest", "settle", "takes_of",
           "unknown_parameter"]

Takes = Literal["prompt", "product"]
PROMPT_NAMES = ("prompt", "text")


def takes_of(fn: Callable[..., Any]) -> Takes:
    """Whether ``fn`` wants the prompt text or the Product (the rule in the docstring)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return "product"
    if not params:
        raise BenchError(f"{getattr(fn, '__name__', fn)!r} takes no argument: "
                         "a predictor function takes a product or its prompt text")
    first = params[0]
    annotation = first.annotation
    if isinstance(annotation, str):  # `from __future__ import annotations`
        try:
            annotation = typing.get_type_hints(fn).get(first.name, annotation)
        except Exception:
            annotation = {"str": str, "Product": Product}.get(annotation.split(".")[-1],
                                                              annotation)
    if annotation is str:
        return "prompt"
    if annotation is Product:
        return "product"
    return "prompt" if first.name in PROMPT_NAMES else "product"


def unknown_parameter(name: str, key: str, accepted: Iterable[str]) -> str:
    """The one message for a parameter a predictor does not take (``--param``
    on the CLI, ``params=`` in ``bench.evaluate``)."""
    options = ", ".join(accepted) or "none"
    return f"predictor {name!r} has no parameter {key!r} (parameters: {options})"


def check_params(name: str, fn: Callable[..., Any], params: Mapping[str, Any]) -> None:
    """``BenchError`` unless ``fn(item, **params)`` binds: a parameter it does not
    take, or one it needs that is not given, is refused before anything runs."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return
    parameters = list(signature.parameters.values())[1:]  # the first takes the item
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        accepted = None
    else:
        accepted = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                              p.KEYWORD_ONLY)]
        for key in params:
            if key not in accepted:
                raise BenchError(unknown_parameter(name, key, accepted))
    missing = [p.name for p in parameters if p.default is p.empty and p.name not in params
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if missing:
        raise BenchError(f"predictor {name!r} needs a value for its parameter "
                         f"{', '.join(repr(m) for m in missing)}")


def settle(value: Any) -> Any:
    """What a function returned, awaited when it is awaitable (an ``async def``
    function's coroutine), on an event loop of its own."""
    if not inspect.isawaitable(value):
        return value

    async def wait() -> Any:
        return await value

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop on this thread (a runner worker): run one here
        return asyncio.run(wait())
    box: list[Any] = []  # this thread runs a loop (a notebook's): await on another thread

    def target() -> None:
        try:
            box.append((True, asyncio.run(wait())))
        except BaseException as exc:  # handed back to the caller
            box.append((False, exc))

    thread = threading.Thread(target=target, name="await", daemon=True)
    thread.start()
    thread.join()
    ok, result = box[0]
    if not ok:
        raise result
    return result


def function_name(fn: Callable[..., Any], name: str | None) -> str:
    if name:
        return check_name(name)
    own = getattr(fn, "__name__", "")
    if not own or own == "<lambda>" or not own.isidentifier():
        raise BenchError("this function has no name of its own (a lambda?): "
                         "pass name='my-predictor'")
    return own.replace("_", "-")


class NotebookFunction(BasePredictor):
    """``fn(product or prompt, **params)`` per item; ``None`` is no answer."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None,
                 params: Mapping[str, Any] | None = None, takes: Takes | None = None):
        if not callable(fn):
            raise BenchError(f"not a function: {fn!r}")
        if takes not in (None, "prompt", "product"):
            raise BenchError(f"takes must be 'prompt' or 'product', not {takes!r}")
        self.fn = fn
        self.name = function_name(fn, name)
        self.params = dict(params or {})
        self.takes: Takes = takes or takes_of(fn)
        check_params(self.name, fn, self.params)
        identity = identify(fn)
        self.code, self.code_from, self.reads = identity.code, identity.code_from, identity.reads
        warn_opaque(self.name, fn, identity.opaque)

    def predict_one(self, product: Product) -> Prediction:
        return Prediction.of(settle(
            self.fn(product.prompt if self.takes == "prompt" else product, **self.params)))

    def fingerprint(self) -> dict[str, Any]:
        out = {"function": getattr(self.fn, "__qualname__", self.name), "takes": self.takes,
               "code_sha256": self.code, "code_from": self.code_from, "params": self.params}
        if self.reads is not None:  # absent when it reads nothing: older runs keep their folder
            out["reads_sha256"] = self.reads
        return out
