"""A person's guesses, from the sheet they filled in."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.data import DEFAULT_TEST
from bench.registry import register
from bench.types import BasePredictor, Prediction, Product
from predictors.sheets import file_digest, read_guesses, replay

SHEET = "human_output.csv"


@register("human", kind="person")
class HumanPredictor(BasePredictor):
    """A person's guesses from a CSV sheet (prompt,guess or id,prediction)."""

    def __init__(self, csv: Path | None = None, ctx: Context | None = None):
        self.name = "human"
        self._ctx = ctx or Context()
        data_dir = self._ctx.data_dir
        self._default_sheet = csv is None
        self.csv = csv if csv is not None else (data_dir / SHEET if data_dir else None)
        self._guesses: dict[int, float] | None = None

    def unavailable(self) -> str | None:
        if self.csv is None:
            return f"no guesses sheet: pass --param csv=PATH or a --data-dir with {SHEET}"
        if not self.csv.exists():
            return f"guesses sheet {self.csv} not found (--param csv=PATH)"
        test_set = self._ctx.test_set
        if self._default_sheet and test_set is not None and test_set.name != DEFAULT_TEST:
            return f"the default sheet covers {DEFAULT_TEST} only: pass --param csv=PATH"
        return None

    def fingerprint(self) -> dict[str, Any]:
        return {"sheet": self.csv.name if self.csv else None,
                "sheet_sha256": file_digest(self.csv)}

    def prepare(self) -> None:
        assert self.csv is not None
        products = self._ctx.test_set.products() if self._ctx.test_set else \
            self._ctx.benchmark.products()
        self._guesses = read_guesses(self.csv, products)

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        if self._guesses is None:
            self.prepare()
        assert self._guesses is not None
        return replay(self._guesses, products, "no guess in the sheet")
