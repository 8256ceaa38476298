"""What a predictor may ask of the harness: data, caches, where to keep models,
and (for predictors built from others, such as an ensemble) running another
predictor through the ordinary runner on rows held out of its training."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from bench import data
from bench.cache import ResponseCache
from bench.errors import BenchError
from bench.types import Example, Product

# Where runs on held-out training rows go, under the results dir: two levels
# deeper than test-set runs, so leaderboards and reports never list them.
HELD_OUT_RUNS = "held-out-runs"


@dataclass
class Context:
    """Handed to predictor constructors that take a ``ctx`` parameter."""

    data_dir: Path | None = None
    cache_dir: Path = field(default_factory=data.cache_root)
    use_cache: bool = True
    # The test set of this run (``--test FILE`` or the fixed benchmark).
    test_set: data.TestSet | None = None
    # Where runs are stored (``--results-dir``); None: under the cache dir.
    results_dir: Path | None = None
    # Descriptions of products no predictor built with this context trains on.
    held_out: frozenset[str] = frozenset()
    _parent: Context | None = field(default=None, repr=False)
    _train: dict[tuple[bool, int | None, int], tuple[list[Example], str]] = field(
        default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = data.default_data_dir(self.data_dir)

    @cached_property
    def responses(self) -> ResponseCache:
        """Raw model responses; a no-op cache under ``--no-cache``."""
        return ResponseCache(self.cache_dir / "responses.sqlite" if self.use_cache else None)

    @property
    def models_dir(self) -> Path:
        """Where fitted models live, each under a key of data, params, versions."""
        return self.cache_dir / "models"

    @cached_property
    def benchmark(self) -> data.TestSet:
        """The fixed test set, which training data must never overlap."""
        return data.load_test_set(self.data_dir)

    def training_data_missing(self) -> str | None:
        """Why no training rows can be read here (a data folder without its
        training file), or None. Cheap: ``bench list`` asks it for each
        trainable predictor."""
        if self.data_dir is None:  # the local cache, else the hub
            return data.cannot_fetch(data.DEFAULT_TEST) or data.cannot_fetch(data.DEFAULT_TRAIN)
        path = self.data_dir / data.manifest(data.DEFAULT_TRAIN)["data_dir_file"]
        return None if path.exists() else f"no training data: {path} not found"

    def train_examples(
        self, *, include_extra: bool = False, size: int | None = None, seed: int = 42
    ) -> tuple[list[Example], str]:
        """Training examples (test rows removed) and their data fingerprint.

        Loaded once per choice of rows: several predictors of one run share them.
        """
        key = (include_extra, size, seed)
        if self._parent is not None:
            examples, fp = self._parent.train_examples(include_extra=include_extra, size=size,
                                                       seed=seed)
            kept = [e for e in examples if e.product.description not in self.held_out]
            digest = hashlib.sha256("\n".join(sorted(self.held_out)).encode()).hexdigest()
            return kept, f"{fp}-without-{len(examples) - len(kept)}-{digest[:12]}"
        if key in self._train:
            examples, fp = self._train[key]
            return list(examples), fp
        examples, fp = data.load_train(
            self.data_dir, test_set=self.benchmark, include_extra=include_extra,
            size=size, seed=seed,
        )
        if self.test_set is not None and self.test_set is not self.benchmark:
            banned = {p.description for p in self.test_set.products()}
            examples = [e for e in examples if e.product.description not in banned]
        self._train[key] = (examples, fp)
        return list(examples), fp

    def holding_out(self, products: Iterable[Product]) -> Context:
        """This context with ``products`` removed from every training set it hands
        out (rows with the same description), for validation on them."""
        root = self._parent or self
        held = self.held_out | {p.description for p in products}
        child = replace(root, held_out=frozenset(held), _parent=root)
        for shared in ("responses", "benchmark"):  # loaded once, shared with the child
            if shared in root.__dict__:
                child.__dict__[shared] = root.__dict__[shared]
        return child

    def build(self, spec: str, params: dict[str, str] | None = None) -> Any:
        """A registered predictor built with this context."""
        from bench import registry

        return registry.build(spec, params or {}, self)

    def predict_with(self, predictor: Any, spec: str, params: dict[str, str] | None,
                     rows: Sequence[Example], name: str, progress: bool = True) -> Any:
        """Run ``predictor`` through the ordinary runner on ``rows`` (training
        examples, with their prices as the truth) as a test set called ``name``,
        stored under ``<results dir>/held-out-runs/``: resumable, cached, costed.

        Returns the runner's result (``.store.records()`` holds the answers).
        """
        from bench import registry, runner

        if not rows:
            raise BenchError(f"no rows to run {spec} on")
        from bench.types import capabilities

        reason = capabilities(predictor).unavailable()
        if reason:
            raise BenchError(f"{spec}: {reason}")
        test_set = rows_test_set(name, rows)
        base = (self.results_dir or self.cache_dir / "runs") / HELD_OUT_RUNS
        kind = registry.get(registry.parse_spec(spec)[0]).kind
        return runner.run_predictor(predictor, test_set, base, spec=spec, kind=kind,
                                    params=params, progress=progress)


def rows_test_set(name: str, rows: Sequence[Example]) -> data.TestSet:
    """Training examples as an in-memory test set (ids kept, prices as truth)."""
    out = []
    for e in rows:
        p = e.product
        out.append(data.Row(id=p.id, text=f"{p.prompt}{e.price:.2f}", price=e.price,
                            title=p.title, category=p.category,
                            details=dict(p.details) if p.details else None))
    return data.TestSet(name, out, data.fingerprint(out), source="held-out training rows")
