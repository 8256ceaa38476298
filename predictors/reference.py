"""Recorded published runs: per-item predictions of other systems, replayed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.data import DEFAULT_TEST
from bench.registry import register
from bench.types import BasePredictor, Prediction, Product
from predictors.sheets import file_digest, read_guesses, replay

FOLDER = "reference-runs"


def recorded_runs(ctx: Context | None) -> list[str]:
    """Names of the ``reference-runs/*.csv`` files in the data directory."""
    data_dir = (ctx or Context()).data_dir
    if data_dir is None or not (data_dir / FOLDER).is_dir():
        return []
    return sorted(p.stem for p in (data_dir / FOLDER).glob("*.csv"))


@register("reference", kind="reference", variant="run", variants=recorded_runs)
class ReferencePredictor(BasePredictor):
    """A recorded published run (data dir's reference-runs/RUN.csv)."""

    def __init__(self, run: str | None = None, ctx: Context | None = None):
        self._ctx = ctx or Context()
        self.run = run
        self.name = f"reference:{run}" if run else "reference"
        data_dir = self._ctx.data_dir
        self.path: Path | None = (data_dir / FOLDER / f"{run}.csv") if data_dir and run else None
        self._guesses: dict[int, float] | None = None

    def unavailable(self) -> str | None:
        if self.run is None:
            runs = ", ".join(recorded_runs(self._ctx)) or "none found"
            return f"no recorded runs here: name one as reference:RUN ({runs})"
        if self.path is None:
            return "recorded runs live in a data directory: pass --data-dir"
        if not self.path.exists():
            return f"no recorded run {self.run!r} ({self.path} not found)"
        test_set = self._ctx.test_set
        if test_set is not None and test_set.name != DEFAULT_TEST:
            return f"recorded on {DEFAULT_TEST} only, not on {test_set.name}"
        return None

    def fingerprint(self) -> dict[str, Any]:
        return {"run": self.run, "sha256": file_digest(self.path)}

    def prepare(self) -> None:
        assert self.path is not None
        self._guesses = read_guesses(self.path, self._ctx.benchmark.products())

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        if self._guesses is None:
            self.prepare()
        assert self._guesses is not None
        return replay(self._guesses, products, "not in the recorded run")
