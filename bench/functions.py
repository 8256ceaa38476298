"""A plain notebook function as a Predictor, with an identity that follows its code.

``bench.evaluate(f)`` accepts ``def f(product: Product) -> float`` or, as in the
course's notebooks, ``def f(prompt: str) -> float`` (the canonical test prompt,
ending ``Price is $``). Which one is decided by the first parameter: annotated
``str`` -> the prompt text; annotated ``Product`` -> the product; unannotated,
a parameter named ``prompt`` or ``text`` -> the prompt text, anything else ->
the product. ``takes="prompt" | "product"`` overrides the rule.

Identity: the run's name is ``name=`` or the function's name (``_`` -> ``-``);
its fingerprint (and so its run folder) holds the input kind, the parameters
and a digest of the function's code. The code is its source
(``inspect.getsource``; IPython keeps every cell's source, so this works in a
notebook), compared as its syntax tree so that comments and blank lines do not
count; when no source can be found (``exec``'d code), the compiled code object
(bytecode, constants, names, nested code) and the defaults. So re-evaluating
the same function resumes its run and asks nothing again, and an edited
function is a new run with its own figures. Values the function reads from
globals are not part of its identity: pass them as ``params`` instead.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

from bench.errors import BenchError
from bench.escape import check_name
from bench.types import BasePredictor, Prediction, Product

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


def code_digest(fn: Callable[..., Any]) -> tuple[str, str]:
    """``(digest, what was hashed)``: ``"source"`` or ``"bytecode"``."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = None
    if source is not None:
        text = textwrap.dedent(source)
        try:
            text = ast.dump(ast.parse(text))  # comments and layout do not count
        except SyntaxError:  # a lambda cut out of a longer line: its text as it is
            pass
        return hashlib.sha256(text.encode()).hexdigest()[:16], "source"
    code = getattr(fn, "__code__", None)
    if code is None:
        raise BenchError(f"cannot identify {fn!r}: no source and no code object "
                         "(pass a plain function)")
    parts = [_code_parts(code), repr(getattr(fn, "__defaults__", None)),
             repr(sorted((getattr(fn, "__kwdefaults__", None) or {}).items()))]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16], "bytecode"


def _code_parts(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(_code_parts(c) if isinstance(c, types.CodeType) else repr(c)
                   for c in code.co_consts)
    return (code.co_code.hex(), consts, code.co_names, code.co_varnames)


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
        self.code, self.code_from = code_digest(fn)

    def predict_one(self, product: Product) -> Prediction:
        return Prediction.of(
            self.fn(product.prompt if self.takes == "prompt" else product, **self.params))

    def fingerprint(self) -> dict[str, Any]:
        return {"function": getattr(self.fn, "__qualname__", self.name), "takes": self.takes,
                "code_sha256": self.code, "code_from": self.code_from, "params": self.params}
