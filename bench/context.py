"""What a predictor may ask of the harness: data, caches, where to keep models."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from bench import data
from bench.cache import ResponseCache
from bench.types import Example


@dataclass
class Context:
    """Handed to predictor constructors that take a ``ctx`` parameter."""

    data_dir: Path | None = None
    cache_dir: Path = field(default_factory=data.cache_root)
    use_cache: bool = True
    # The test set of this run (``--test FILE`` or the fixed benchmark).
    test_set: data.TestSet | None = None
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
        if self.data_dir is None:
            return None  # the local cache, else the hub
        path = self.data_dir / data.manifest(data.DEFAULT_TRAIN)["data_dir_file"]
        return None if path.exists() else f"no training data: {path} not found"

    def train_examples(
        self, *, include_extra: bool = False, size: int | None = None, seed: int = 42
    ) -> tuple[list[Example], str]:
        """Training examples (test rows removed) and their data fingerprint.

        Loaded once per choice of rows: several predictors of one run share them.
        """
        key = (include_extra, size, seed)
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
