"""What identifies a Python callable's answers: its code, and the outside values it reads.

A function predictor's run folder is keyed by this identity, so two callables
that can answer differently must never share one, and the same callable
evaluated again must find its run. ``identify(fn)`` gives:

- ``code``: a digest of the code. The source (``inspect.getsource``; IPython
  keeps every cell's source) compared as its syntax tree, so comments and
  layout do not count; a lambda adds its compiled code object (two lambdas on
  one line share their source line); no source at all (``exec``'d code): the
  code object alone (bytecode, constants, names, nested code).
- ``reads``: a digest of the plain values the callable reads from outside
  itself: the module globals its code names (``LOAD_GLOBAL``, in nested code
  too), ``module.NAME`` attributes, closure cells, default arguments, the state
  of the object a method is bound to (its ``__dict__`` and ``__slots__``),
  ``functools.partial`` arguments. Plain values are ``None``, bools, numbers,
  strings, bytes, and tuples and frozensets of them (up to ``MAX_VALUES``
  values in all); a list, dict or set is not (it may be a log the function
  appends to, or data). A function of the same module (a helper in
  the same notebook) is identified the same way, recursively.
- ``opaque``: the names of the outside values that cannot be digested (an
  object, a model, an array, a data frame): their changes go unseen, so the
  caller is told to pass them as parameters or to rename the run.

Not read: modules, builtins, classes from other modules, functions of other
modules (library code) and callables without instance state (numpy ufuncs).
"""

from __future__ import annotations

import ast
import dis
import functools
import hashlib
import inspect
import textwrap
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.digest import digest
from bench.errors import BenchError

# How many values the plain values read may hold, in all, before they count as
# one opaque value (a tuple of a million prices is data, not configuration).
MAX_VALUES = 10_000
_GLOBAL_LOADS = {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"}
_ATTR_LOADS = {"LOAD_ATTR", "LOAD_METHOD"}


NOT_PLAIN = object()  # what _plain returns for a value that is not made of plain values


class IdentityWarning(UserWarning):
    """A function reads outside values that are not part of its run's identity."""


@dataclass(frozen=True)
class Identity:
    code: str  # digest of the code
    code_from: str  # "source" or "bytecode"
    reads: str | None  # digest of the plain outside values read; None when none
    opaque: tuple[str, ...] = ()  # outside values read but not digested, by name


def identify(fn: Callable[..., Any]) -> Identity:
    """``fn``'s identity; ``BenchError`` when it has no Python code to identify."""
    walk = _Walk()
    code, code_from = walk.of_callable(fn, "")
    reads = digest(walk.reads, 16) if walk.reads else None
    return Identity(code, code_from, reads, tuple(sorted(set(walk.opaque))))


def warn_opaque(name: str, fn: Callable[..., Any], opaque: tuple[str, ...]) -> None:
    """One line saying which outside values ``fn`` reads that its identity does
    not hold, attributed to the line defining ``fn``."""
    if not opaque:
        return
    code = _code_of(fn)
    one = len(opaque) == 1
    message = (f"{name} reads {', '.join(opaque)} from outside the function, and "
               f"{'its value is' if one else 'their values are'} not part of its run's "
               f"identity: if {'it changes' if one else 'they change'} what {name} answers, "
               f"pass {'it' if one else 'them'} as params=, or give the run a new name=")
    if code is None:
        warnings.warn(message, IdentityWarning, stacklevel=3)
        return
    module = getattr(fn, "__module__", None) or "__main__"
    warnings.warn_explicit(message, IdentityWarning, code.co_filename, code.co_firstlineno,
                           module=module)


def code_digest(fn: Callable[..., Any]) -> tuple[str, str]:
    """``(digest, what was hashed)``: ``"source"`` or ``"bytecode"``."""
    target = _unwrap(fn)
    try:
        source = inspect.getsource(target)
    except (OSError, TypeError):
        source = None
    code = _code_of(target)
    if source is not None:
        text = textwrap.dedent(source)
        try:
            text = ast.dump(ast.parse(text))  # comments and layout do not count
        except SyntaxError:  # a lambda cut out of a longer line: its text as it is
            pass
        if code is not None and code.co_name == "<lambda>":
            # Several lambdas may share this source line: their code tells them apart.
            text += repr(code_parts(code))
        return hashlib.sha256(text.encode()).hexdigest()[:16], "source"
    if code is None:
        raise BenchError(f"cannot identify {fn!r}: no source and no code object "
                         "(pass a plain function)")
    parts = [code_parts(code), repr(getattr(target, "__defaults__", None)),
             repr(sorted((getattr(target, "__kwdefaults__", None) or {}).items()))]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16], "bytecode"


def code_parts(code: types.CodeType) -> tuple[Any, ...]:
    """What a code object computes: bytecode, constants (nested code too), names."""
    consts = tuple(code_parts(c) if isinstance(c, types.CodeType) else repr(c)
                   for c in code.co_consts)
    return (code.co_code.hex(), consts, code.co_names, code.co_varnames)


def _unwrap(fn: Any) -> Any:
    """The Python function behind a bound method or a callable object."""
    if isinstance(fn, types.MethodType):
        return fn.__func__
    call = _own_call(fn)
    return call if call is not None else fn


def _own_call(obj: Any) -> types.FunctionType | None:
    """The Python ``__call__`` of a callable object (not of a function or a builtin)."""
    if isinstance(obj, types.FunctionType) or inspect.isroutine(obj) or isinstance(obj, type):
        return None
    call = inspect.getattr_static(type(obj), "__call__", None)
    return call if isinstance(call, types.FunctionType) else None


def _code_of(fn: Any) -> types.CodeType | None:
    code = getattr(_unwrap(fn), "__code__", None)
    return code if isinstance(code, types.CodeType) else None


def global_names(code: types.CodeType) -> list[tuple[str, str | None]]:
    """``(global name, attribute read from it right after or None)`` for every
    global the code loads, nested code included, in order, without repeats."""
    out: list[tuple[str, str | None]] = []
    instructions = list(dis.get_instructions(code))
    for at, ins in enumerate(instructions):
        if ins.opname in _GLOBAL_LOADS and isinstance(ins.argval, str):
            after = instructions[at + 1] if at + 1 < len(instructions) else None
            attr = after.argval if after is not None and after.opname in _ATTR_LOADS \
                and isinstance(after.argval, str) else None
            for item in ((ins.argval, None), (ins.argval, attr)):
                if item not in out:
                    out.append(item)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out += [item for item in global_names(const) if item not in out]
    return out


@dataclass
class _Walk:
    """Collects what a callable reads: plain values by label, opaque ones by name."""

    reads: dict[str, Any] = field(default_factory=dict)
    opaque: list[str] = field(default_factory=list)
    budget: int = MAX_VALUES
    seen: set[int] = field(default_factory=set)

    def of_callable(self, fn: Any, prefix: str) -> tuple[str, str]:
        """Walk ``fn``; its code digest."""
        if isinstance(fn, functools.partial):
            for i, arg in enumerate(fn.args):
                self.value(f"{prefix}partial.args[{i}]", arg)
            for key, arg in sorted(fn.keywords.items()):
                self.value(f"{prefix}partial.{key}", arg)
            code, code_from = self.of_callable(fn.func, prefix)
            return code, code_from
        target = _unwrap(fn)
        home = getattr(target, "__globals__", None)
        if isinstance(fn, types.MethodType):
            self.state(f"{prefix}self", fn.__self__, home)
        elif _own_call(fn) is not None:
            self.state(f"{prefix}self", fn, home)  # a callable object: its __call__ and state
        code, code_from = code_digest(fn)
        if isinstance(target, types.FunctionType):
            self.function(target, prefix)
        return code, code_from

    def function(self, fn: types.FunctionType, prefix: str) -> None:
        if id(fn) in self.seen:
            return
        self.seen.add(id(fn))
        code = fn.__code__
        module = fn.__globals__
        for name, attr in global_names(code):
            if name not in module:
                continue  # a builtin, or not defined (yet)
            value = module[name]
            if attr is None:
                if not isinstance(value, types.ModuleType):
                    self.value(f"{prefix}{name}", value, home=module)
            elif isinstance(value, types.ModuleType) and hasattr(value, attr):
                found = getattr(value, attr)  # module.CONSTANT (a module's code is not ours)
                if _plain(found, MAX_VALUES) is not NOT_PLAIN:
                    self.value(f"{prefix}{name}.{attr}", found, home=module)
        for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
            try:
                value = cell.cell_contents
            except ValueError:  # not assigned yet
                continue
            self.value(f"{prefix}{name}", value, home=module)
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        positional = code.co_varnames[: code.co_argcount]
        for name, value in zip(positional[len(positional) - len(fn.__defaults__ or ()):],
                               fn.__defaults__ or (), strict=True):
            self.value(f"{prefix}{name}=", value, home=module)
        for name, value in sorted((fn.__kwdefaults__ or {}).items()):
            if name in names:
                self.value(f"{prefix}{name}=", value, home=module)

    def value(self, label: str, value: Any, home: dict[str, Any] | None = None) -> None:
        """One outside value: digested, walked (a function of the same module),
        skipped (library code, classes, modules) or named as opaque."""
        plain = _plain(value, self.budget)
        if plain is not NOT_PLAIN:
            self.budget -= _size(value)
            self.reads[label] = plain
            return
        if isinstance(value, types.ModuleType):
            return
        if isinstance(value, type):
            if home is not None and value.__module__ == home.get("__name__"):
                self.class_state(label, value)
            return
        if isinstance(value, types.FunctionType):
            if home is not None and value.__globals__ is home:
                if id(value) not in self.seen:
                    self.reads[label] = {"code": code_digest(value)[0]}
                    self.function(value, f"{label}.")
            return  # library code: its version is not the run's identity
        if isinstance(value, types.MethodType | functools.partial):
            self.reads[label] = {"code": self.of_callable(value, f"{label}.")[0]}
            return
        if callable(value) and not _own_state(value):
            return  # builtins, ufuncs, method descriptors: library code without state
        self.opaque.append(label)

    def state(self, label: str, obj: Any, home: dict[str, Any] | None) -> None:
        """The state of the object a method is bound to."""
        if isinstance(obj, type):
            self.class_state(label, obj)
            return
        if isinstance(obj, types.ModuleType):
            return
        cls = type(obj)
        self.reads[f"{label}:type"] = f"{cls.__module__}.{cls.__qualname__}"
        attrs: dict[str, Any] = dict(getattr(obj, "__dict__", {}) or {})
        for klass in cls.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for slot in (slots,) if isinstance(slots, str) else slots:
                if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                    attrs.setdefault(slot, getattr(obj, slot))
        for key, value in sorted(attrs.items()):
            self.value(f"{label}.{key}", value, home=home)
        self.class_state(f"{label}:class", cls)

    def class_state(self, label: str, cls: type) -> None:
        """A class's plain class attributes (``rate = 0.9`` in its body)."""
        for klass in cls.__mro__:
            if klass is object:
                continue
            for key, value in sorted(vars(klass).items()):
                if key.startswith("__"):
                    continue
                plain = _plain(value, self.budget)
                if plain is not NOT_PLAIN:
                    self.reads.setdefault(f"{label}.{key}", plain)


def _own_state(obj: Any) -> bool:
    """Whether ``obj`` holds attributes of its own (a dunder-only ``__dict__``, as
    numpy's ufuncs have, is none)."""
    try:
        own = vars(obj)
    except TypeError:
        return False
    return any(not str(key).startswith("__") for key in own)


def _size(value: Any) -> int:
    if isinstance(value, tuple | frozenset):
        return 1 + sum(_size(v) for v in value)
    return 1


def _plain(value: Any, budget: int) -> Any:
    """``value`` as tagged JSON when it is made of plain values only (at most
    ``budget`` of them), else ``NOT_PLAIN``."""
    left = [budget]

    def encode(v: Any) -> Any:
        left[0] -= 1
        if left[0] < 0:
            raise _NotPlain
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int):
            return ["int", str(int(v))]
        if isinstance(v, float):
            return ["float", float.__repr__(v)]
        if isinstance(v, str):
            return str(v)
        if isinstance(v, bytes | complex):
            return [type(v).__name__, repr(v)]
        if isinstance(v, tuple):
            return ["tuple", [encode(x) for x in v]]
        if isinstance(v, frozenset):
            return ["frozenset", sorted((encode(x) for x in v), key=repr)]
        raise _NotPlain  # mutable containers too: a list may be a log that grows

    try:
        return encode(value)
    except (_NotPlain, RecursionError):
        return NOT_PLAIN


class _NotPlain(Exception):
    pass
