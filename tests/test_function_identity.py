"""A function's run is its own: two callables that can answer differently never
share a run folder (lambdas on one line, differently configured objects,
closures, changed module globals), parameters are checked before anything
runs, outside values that cannot be part of the identity are named, and an
``async def`` is awaited. Functions defined here, in a real file, and in real
IPython cells."""

from __future__ import annotations

import asyncio
import functools
import warnings
from pathlib import Path

import pytest

import bench
from bench import BenchError, Product
from bench.functions import unknown_parameter
from bench.identity import IdentityWarning, identify
from tests.conftest import write_synthetic_test_file


@pytest.fixture
def test_file(tmp_path: Path) -> Path:
    return write_synthetic_test_file(tmp_path / "items.jsonl")  # 12 items, ids 0..11


def _evaluate(fn, test_file: Path, results: Path, **kwargs):
    return bench.evaluate(fn, test=test_file, results_dir=results, progress=False, **kwargs)


def _guesses(run) -> set[float]:
    return {r.price for r in run.records.values()}


# -- 21.8: two functions, two runs ---------------------------------------------

g1, g2 = (lambda p: 300.0), (lambda p: 400.0)  # noqa: E731


class Model:
    def __init__(self, price: float):
        self.price = price

    def guess(self, product: Product) -> float:
        return self.price


class Slotted:
    __slots__ = ("price",)

    def __init__(self, price: float):
        self.price = price

    def __call__(self, product: Product) -> float:
        return self.price


def make(price: float):
    def guess(product: Product) -> float:
        return price

    return guess


def scaled_by(product: Product, k: float) -> float:
    return k * product.id


def test_two_lambdas_on_one_line_are_two_runs(tmp_path, test_file):
    first = _evaluate(g1, test_file, tmp_path, name="guess")
    second = _evaluate(g2, test_file, tmp_path, name="guess")
    assert second.run_dir != first.run_dir and second.predicted == 12
    assert _guesses(first) == {300.0} and _guesses(second) == {400.0}


@pytest.mark.parametrize("build", [lambda p: Model(p).guess, Slotted, make,
                                   lambda p: functools.partial(scaled_by, k=p)],
                         ids=["bound-method", "slotted-callable", "closure", "partial"])
def test_differently_configured_callables_are_two_runs(tmp_path, test_file, build):
    first = _evaluate(build(90.0), test_file, tmp_path, name="model")
    second = _evaluate(build(95.0), test_file, tmp_path, name="model")
    assert second.run_dir != first.run_dir and second.predicted == 12
    assert first.mae != second.mae
    again = _evaluate(build(90.0), test_file, tmp_path, name="model")  # configured as the first
    assert again.run_dir == first.run_dir and again.predicted == 0


async def priced_later(product: Product) -> float:
    await asyncio.sleep(0)
    return 7.0


def test_an_async_function_is_awaited(tmp_path, test_file):
    run = _evaluate(priced_later, test_file, tmp_path)
    assert run.answered == 12 and _guesses(run) == {7.0}


# -- 22.6: a parameter the function does not take --------------------------------


def scaled(prompt: str) -> float:
    return 6.0 * len(prompt.split())


def test_a_parameter_the_function_does_not_take_is_refused_up_front(tmp_path, test_file):
    with pytest.raises(BenchError) as caught:
        _evaluate(scaled, test_file, tmp_path, params={"K": 6.0})
    # the CLI's message, from the same place
    assert str(caught.value) == unknown_parameter("scaled", "K", []) == \
        "predictor 'scaled' has no parameter 'K' (parameters: none)"
    with pytest.raises(BenchError, match="needs a value for its parameter 'k'"):
        _evaluate(scaled_by, test_file, tmp_path)
    assert not list(tmp_path.glob("*/*/predictions.jsonl"))  # nothing ran
    ok = _evaluate(scaled_by, test_file, tmp_path, params={"k": 2.0})
    assert ok.answered == 12


# -- 22.7: the outside values a function reads ----------------------------------


@pytest.fixture()
def shell(tmp_path: Path, test_file: Path):
    """A real IPython shell running cells (IPython keeps each cell's source)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns.update(TEST=str(test_file), RESULTS=str(tmp_path / "results"))
    shell.run_cell("import bench, math\n"
                   "def run(fn, **kw):\n"
                   "    return bench.evaluate(fn, test=TEST, results_dir=RESULTS,"
                   " progress=False, **kw)\n").raise_error()
    yield shell
    InteractiveShell.clear_instance()


def _cell(shell, code: str):
    result = shell.run_cell(code)
    result.raise_error()
    return result.result


def test_a_changed_global_is_a_new_run(shell):
    _cell(shell, "K = 5.0\nSIZES = (1, 2)\n"
                 "def helper(prompt):\n    return K * len(SIZES)\n"
                 "def scaled(prompt: str) -> float:\n    return helper(prompt) + math.pi\n")
    first = _cell(shell, "run(scaled)")
    assert first.predicted == 12
    assert _cell(shell, "run(scaled)").predicted == 0  # nothing changed: the same run
    changed = _cell(shell, "K = 6.0\nrun(scaled)")  # read through a helper function
    assert changed.run_dir != first.run_dir and changed.predicted == 12
    assert changed.mae != first.mae
    tupled = _cell(shell, "SIZES = (1, 2, 3)\nrun(scaled)")
    assert tupled.run_dir not in (first.run_dir, changed.run_dir)
    back = _cell(shell, "K = 5.0\nSIZES = (1, 2)\nrun(scaled)")
    assert back.run_dir == first.run_dir and back.predicted == 0


def test_outside_values_that_are_not_its_identity_are_named_once(shell):
    _cell(shell, "class Thing:\n    def __init__(self):\n        self.rate = [2.0]\n"
                 "model = Thing()\nTABLE = {'a': 1}\n"
                 "def guess(prompt):\n    return model.rate[0] * TABLE['a'] * len(prompt)\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _cell(shell, "run(guess)")
    said = [w for w in caught if issubclass(w.category, IdentityWarning)]
    assert len(said) == 1
    text = str(said[0].message)
    assert text.startswith("guess reads TABLE, model from outside the function")
    assert "params=" in text and "name=" in text and "\n" not in text
    # modules, builtins, helper functions and plain values: nothing to say
    _cell(shell, "N = 3\ndef helper(p):\n    return N\n"
                 "def quiet(prompt):\n    return math.sqrt(len(prompt)) + helper(prompt)\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _cell(shell, "run(quiet)")
    assert not [w for w in caught if issubclass(w.category, IdentityWarning)]


def test_what_counts_as_read() -> None:
    K = 1.0  # noqa: F841  (a local of this test, not a global of the function)

    def reads_nothing(p: Product) -> float:
        return float(len(p.title))

    assert identify(reads_nothing).reads is None and identify(reads_nothing).opaque == ()
    assert identify(make(1.0)).reads != identify(make(2.0)).reads
    assert identify(Model(1.0).guess).reads != identify(Model(2.0).guess).reads
    assert identify(g1).code != identify(g2).code
