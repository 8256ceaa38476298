"""The registered classic predictors: constant, linear, random-forest, xgboost.

Each trains on the training pool (``ctx.train_examples()``, test rows already
removed), saves the fitted model under ``ctx.models_dir`` keyed by (training
data, parameters, library and code versions), and on later runs loads it
instead of training again. scikit-learn and xgboost are imported only when a
model is fitted or loaded, never when the registry is listed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

from bench import exactmath
from bench.errors import BenchError
from bench.registry import register
from bench.types import BasePredictor, Example, Prediction, Product
from predictors.classic.store import ModelStore, SavedModel, cache_key

_PACKAGE_DIR = Path(__file__).resolve().parent
# The code that shapes a fitted model: editing it invalidates saved models.
_MODEL_CODE = ("features.py", "models.py", "exact.py", "baselines.py")
_SHARED_CODE = (exactmath.__file__,)  # harness code the models compute with


def _versions(libraries: Sequence[str]) -> dict[str, str]:
    out = {}
    for name in libraries:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def _code_digest() -> str:
    digest = hashlib.sha256()
    for name in _MODEL_CODE:
        digest.update((_PACKAGE_DIR / name).read_bytes())
    for path in _SHARED_CODE:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def examples_digest(examples: Sequence[Example]) -> str:
    """sha256 of everything a model sees of its training rows, in order."""
    digest = hashlib.sha256()
    for e in examples:
        p = e.product
        details = json.dumps(p.details, sort_keys=True, default=str) if p.details else ""
        digest.update(json.dumps([p.title, p.description, p.category, details,
                                  round(e.price, 2)]).encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def numerics_environment() -> dict[str, Any]:
    """What decides floating-point summation order in the libraries under a model:
    BLAS/OpenMP libraries with their kernels and threads, numpy's SIMD level, and the
    variables that override them. Recorded beside each saved model (never in its key):
    stage one (``exact``) does not depend on any of them, and the trees do not
    depend on thread counts; this is what to compare if two machines ever disagree."""
    import os

    out: dict[str, Any] = {"cpu_count": os.cpu_count(), "variables": {
        k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                   "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                   "MKL_NUM_THREADS", "NPY_DISABLE_CPU_FEATURES")
        if k in os.environ}}
    try:
        from threadpoolctl import threadpool_info

        out["thread_pools"] = [
            {k: pool.get(k) for k in ("internal_api", "version", "architecture",
                                      "num_threads", "prefix")}
            for pool in threadpool_info()]
    except ImportError:
        pass
    try:
        from numpy._core._multiarray_umath import __cpu_features__

        out["numpy_simd"] = sorted(k for k, v in __cpu_features__.items() if v)
    except ImportError:
        pass
    return out


class _Progress:
    """A tqdm bar on stderr while fitting (hidden when stderr is not a terminal)."""

    def __init__(self, name: str, total: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=f"fitting {name}", file=sys.stderr, disable=None,
                        leave=False)

    def __call__(self, message: str) -> None:
        self.bar.set_postfix_str(message, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class ClassicPredictor(BasePredictor):
    """Shared life cycle: choose training rows, fit or load, predict in one batch."""

    kind_name: ClassVar[str]
    libraries: ClassVar[tuple[str, ...]] = ("scikit-learn", "numpy", "scipy")
    batch_size = 1024

    def __init__(self, ctx: Any = None, train_size: int | None = None,
                 include_extra: bool = False, seed: int = 42, n_jobs: int = 2):
        if train_size is not None and train_size < 10:
            raise ValueError(f"train_size must be at least 10, not {train_size}")
        self.name = self.kind_name
        self.ctx = ctx
        self.train_size = train_size
        self.include_extra = include_extra
        self.seed = seed
        self.n_jobs = n_jobs  # speed only: never part of a key
        self._examples: list[Example] | None = None
        self._model: Any = None
        self.model_dir: Path | None = None
        self.fit_seconds: float | None = None

    # -- what identifies a model ----------------------------------------------

    def params(self) -> dict[str, Any]:
        """Parameters that change the fitted model (and so its predictions)."""
        return {"train_size": self.train_size, "include_extra": self.include_extra,
                "seed": self.seed}

    def _key_parts(self, examples: Sequence[Example]) -> dict[str, Any]:
        return {"predictor": self.name, "params": self.params(),
                "train": {"rows": len(examples), "digest": examples_digest(examples)},
                "versions": {**_versions(self.libraries), "code": _code_digest()}}

    def fingerprint(self) -> dict[str, Any]:
        """Parameters, training-data digest and versions (reads the training rows: no
        fitting, no model loading)."""
        parts = self._key_parts(self.training_examples())
        return {"kind": "classic", **{k: v for k, v in parts.items() if k != "predictor"}}

    # -- the harness's hooks --------------------------------------------------

    def unavailable(self) -> str | None:
        missing = [m for m in ("sklearn", "scipy", *self._extra_modules())
                   if importlib.util.find_spec(m) is None]
        if missing:
            return (f"needs {', '.join(missing)}: pip install 'pricer-bench[classic]'")
        return self._no_training_data()

    def _no_training_data(self) -> str | None:
        if self._examples is not None or self.ctx is None:
            return None
        return self.ctx.training_data_missing()

    def _extra_modules(self) -> tuple[str, ...]:
        return ()

    def training_examples(self) -> list[Example]:
        if self._examples is None:
            if self.ctx is None:
                raise BenchError(f"{self.name} needs a data context to find its training rows")
            self._examples, _ = self.ctx.train_examples(
                include_extra=self.include_extra, size=self.train_size, seed=self.seed)
            if not self._examples:
                raise BenchError(f"{self.name}: no training rows left")
        return self._examples

    def _store(self) -> ModelStore | None:
        return ModelStore(self.ctx.models_dir) if self.ctx is not None else None

    def fit(self, examples: Sequence[Example]) -> None:
        """Train on ``examples`` and, with a context, save the model under its key."""
        examples = list(examples)
        if not examples:
            raise BenchError(f"{self.name}: no training rows")
        started = time.perf_counter()
        self._model = self._fit([e.product for e in examples], [e.price for e in examples])
        self.fit_seconds = time.perf_counter() - started
        store = self._store()
        if store is not None:
            parts = self._key_parts(examples)
            staged = store.staging(self.name)
            self._save(self._model, staged)
            info = {**parts, "trained_on": numerics_environment()}
            self.model_dir = store.save(self.name, cache_key(parts), info, staged)

    def prepare(self) -> None:
        """Load the saved model for these rows and parameters, training it first if none."""
        if self._model is not None:
            return
        examples = self.training_examples()
        store = self._store()
        assert store is not None  # training_examples() needs the context
        key = cache_key(self._key_parts(examples))
        if store.exists(self.name, key):
            saved = store.open(self.name, key)
            self._model = self._load(saved)
            self.model_dir = saved.directory
            return
        print(f"{self.name}: no saved model for these rows and parameters; training on "
              f"{len(examples)} examples", file=sys.stderr)
        self.fit(examples)

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        self.prepare()
        if not products:
            return []
        started = time.perf_counter()
        prices = self._predict(self._model, list(products))
        each = (time.perf_counter() - started) / len(products)
        return [Prediction(price=round(float(p), 2), latency_s=each) for p in prices]

    # -- per model ------------------------------------------------------------

    def _fit(self, products: list[Product], prices: list[float]) -> Any:
        raise NotImplementedError

    def _predict(self, model: Any, products: list[Product]) -> Sequence[float]:
        return model.predict(products)

    def _save(self, model: Any, directory: Path) -> None:
        model.save(directory)

    def _load(self, saved: SavedModel) -> Any:
        raise NotImplementedError


@register("constant", kind="classic")
class ConstantPredictor(ClassicPredictor):
    """The floor: every product priced at the training mean."""

    kind_name = "constant"
    libraries = ()

    def unavailable(self) -> str | None:
        return self._no_training_data()

    def _fit(self, products: list[Product], prices: list[float]) -> float:
        return sum(prices) / len(prices)

    def _predict(self, model: float, products: list[Product]) -> list[float]:
        return [model] * len(products)

    def _save(self, model: float, directory: Path) -> None:
        (directory / "constant.json").write_text(json.dumps({"mean": model}))

    def _load(self, saved: SavedModel) -> float:
        return float(json.loads(saved.read("constant.json"))["mean"])


@register("linear", kind="classic")
class LinearPredictor(ClassicPredictor):
    """Ridge regression on TF-IDF word n-grams of the description, in log price."""

    kind_name = "linear"

    def __init__(self, ctx: Any = None, train_size: int | None = None,
                 include_extra: bool = False, seed: int = 42, n_jobs: int = 2,
                 alpha: float = 0.5):
        super().__init__(ctx, train_size, include_extra, seed, n_jobs)
        self.alpha = alpha

    def params(self) -> dict[str, Any]:
        return {**super().params(), "alpha": self.alpha}

    def _fit(self, products: list[Product], prices: list[float]) -> Any:
        from predictors.classic import features, models

        return models.TextRidge(self.alpha).fit(
            [features.model_text(p) for p in products], models.log_prices(prices))

    def _predict(self, model: Any, products: list[Product]) -> Sequence[float]:
        from predictors.classic import features, models

        return models.to_prices(model.predict([features.model_text(p) for p in products]))

    def _load(self, saved: SavedModel) -> Any:
        from predictors.classic import models

        return models.TextRidge.load(saved, self.alpha)


class _TreePredictor(ClassicPredictor):
    """Stacked trees: ridge out-of-fold prediction + product facts + SVD topics.

    ``include_extra`` defaults to on for the trees: with the 8,661 extra products
    in every training fold, 5-fold CV MAE on the pool drops by about $2 (and by
    about $0.5 on the pool rows from the test set's own source) while training
    stays under a minute. The linear floor does not gain from them and keeps it off.
    """

    def __init__(self, ctx: Any = None, train_size: int | None = None,
                 include_extra: bool = False, seed: int = 42, n_jobs: int = 2,
                 n_estimators: int = 0, alpha: float = 0.5, svd: int = 50, folds: int = 5):
        super().__init__(ctx, train_size, include_extra, seed, n_jobs)
        if n_estimators < 1:
            raise ValueError(f"n_estimators must be at least 1, not {n_estimators}")
        if folds < 2:
            raise ValueError(f"folds must be at least 2, not {folds}")
        self.n_estimators = n_estimators
        self.alpha = alpha
        self.svd = svd
        self.folds = folds

    def params(self) -> dict[str, Any]:
        return {**super().params(), "n_estimators": self.n_estimators, "alpha": self.alpha,
                "svd": self.svd, "folds": self.folds, **self._tree_params()}

    def _tree_params(self) -> dict[str, Any]:
        return {}

    def _spec(self) -> Any:
        from predictors.classic.models import TreeSpec

        return TreeSpec(kind=self.kind_name, n_estimators=self.n_estimators, seed=self.seed,
                        n_jobs=self.n_jobs, **self._tree_params())

    def _fit(self, products: list[Product], prices: list[float]) -> Any:
        from predictors.classic.models import Stacked

        progress = _Progress(self.name, self.folds + 2 + 10)
        try:
            return Stacked(self._spec(), self.alpha, self.svd, self.folds).fit(
                products, prices, progress)
        finally:
            progress.close()

    def _load(self, saved: SavedModel) -> Any:
        from predictors.classic.models import Stacked

        return Stacked.load(saved, self._spec(), self.alpha, self.svd, self.folds)


@register("random-forest", kind="classic")
class RandomForestPredictor(_TreePredictor):
    """scikit-learn random forest on stacked text + product facts, in log price."""

    kind_name = "random-forest"

    def __init__(self, ctx: Any = None, train_size: int | None = None,
                 include_extra: bool = True, seed: int = 42, n_jobs: int = 2,
                 n_estimators: int = 300, alpha: float = 0.5, svd: int = 50, folds: int = 5,
                 min_samples_leaf: int = 2, max_features: float = 0.33):
        super().__init__(ctx, train_size, include_extra, seed, n_jobs, n_estimators, alpha,
                         svd, folds)
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features

    def _tree_params(self) -> dict[str, Any]:
        return {"min_samples_leaf": self.min_samples_leaf, "max_features": self.max_features}


@register("xgboost", kind="classic")
class XGBoostPredictor(_TreePredictor):
    """XGBoost on stacked text + product facts, in log price.

    Defaults from 5-fold CV on the pool (extra products in training): 1000 rounds
    at learning rate 0.02, depth 6 gave CV MAE $86.40, against $86.96 for 600
    rounds at 0.03, depth 5.
    """

    kind_name = "xgboost"
    libraries = ("scikit-learn", "numpy", "scipy", "xgboost")

    def __init__(self, ctx: Any = None, train_size: int | None = None,
                 include_extra: bool = True, seed: int = 42, n_jobs: int = 2,
                 n_estimators: int = 1000, alpha: float = 0.5, svd: int = 50, folds: int = 5,
                 learning_rate: float = 0.02, max_depth: int = 6, subsample: float = 0.8,
                 colsample: float = 0.8):
        super().__init__(ctx, train_size, include_extra, seed, n_jobs, n_estimators, alpha,
                         svd, folds)
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.colsample = colsample

    def _extra_modules(self) -> tuple[str, ...]:
        return ("xgboost",)

    def _tree_params(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "max_depth": self.max_depth,
                "subsample": self.subsample, "colsample": self.colsample}
