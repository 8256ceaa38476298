"""A person's guesses, from the sheet they filled in."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.data import DEFAULT_TEST
from bench.registry import register
from bench.types import Prediction, Product
from predictors.sheets import read_guesses

SHEET = "human_output.csv"


@register("human", kind="person")
class HumanPredictor:
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
        digest = hashlib.sha256(self.csv.read_bytes()).hexdigest()[:16] if self.csv and \
            self.csv.exists() else None
        return {"sheet": self.csv.name if self.csv else None, "sheet_sha256": digest}

    def prepare(self) -> None:
        assert self.csv is not None
        products = self._ctx.test_set.products() if self._ctx.test_set else \
            self._ctx.benchmark.products()
        self._guesses = read_guesses(self.csv, products)

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        if self._guesses is None:
            self.prepare()
        assert self._guesses is not None
        return [Prediction(price=self._guesses[p.id]) if p.id in self._guesses
                else Prediction.failed("no guess in the sheet") for p in products]
