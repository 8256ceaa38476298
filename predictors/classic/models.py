"""The fitted pipelines behind the classic predictors, and their on-disk form.

All of them predict log(1 + price) and transform back: prices span three
orders of magnitude, and in log space a $10 miss on a $20 item weighs like a
$100 miss on a $200 one, which is what trees and ridge need to fit both ends.

- ``TextRidge``: TF-IDF word 1-2 grams of the description (plus category and
  brand tokens) into a ridge regression: the ``linear`` floor, and stage one
  of the trees.
- ``Stacked``: the trees' features are the ridge's out-of-fold prediction
  (stacking: the trees learn when to trust the text), the product's facts
  (``features.NUMERIC_COLUMNS``), and a truncated SVD of the TF-IDF matrix
  (topics the trees can split on). Then a random forest or XGBoost.

Every part saves as JSON or ``.npz`` arrays (no pickle), read back through
``store.SavedModel.read`` which checks each file's signed digest first.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import KFold

from bench.types import Product
from predictors.classic import exact, features
from predictors.classic.store import SavedModel

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def log_prices(prices: Iterable[float]) -> np.ndarray:
    """log(1 + price), the same bits on any machine (``exact.log1p``)."""
    return exact.log1p(np.maximum(np.asarray(list(prices), dtype=float), 0.0))


def to_prices(logs: np.ndarray) -> np.ndarray:
    """Dollars from log(1 + price), the same bits on any machine (``exact.expm1``)."""
    return np.maximum(exact.expm1(logs), 0.0)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with path.open("wb") as handle:
        np.savez_compressed(handle, **arrays)


def _load_npz(raw: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def _counter(vocabulary: dict[str, int] | None = None) -> CountVectorizer:
    # Chosen by 5-fold CV on the pool: word 1-2 grams beat char n-grams alone and
    # matched words+chars within $1 at a quarter of the time.
    return CountVectorizer(ngram_range=(1, 2), min_df=1 if vocabulary else 2,
                           strip_accents="unicode", dtype=np.int64, vocabulary=vocabulary)


class TextRidge:
    """TF-IDF (word 1-2 grams, sublinear TF, smoothed IDF, unit rows) + ridge on log
    price, in ``exact``'s machine-independent arithmetic."""

    max_features = 200_000

    def __init__(self, alpha: float = 0.5):
        self.alpha = alpha
        self.counter: CountVectorizer | None = None
        self.vocabulary: dict[str, int] = {}
        self.idf: np.ndarray | None = None
        self.coef: np.ndarray | None = None
        self.intercept = 0.0

    def fit(self, texts: Sequence[str], y: np.ndarray) -> TextRidge:
        counter = _counter()
        counts = counter.fit_transform(texts)
        terms = counter.get_feature_names_out().tolist()
        totals = np.asarray(counts.sum(axis=0)).ravel()
        kept = exact.top_terms(terms, totals, self.max_features)
        index = {t: i for i, t in enumerate(terms)}
        counts = counts[:, [index[t] for t in kept]]
        self.vocabulary = {t: i for i, t in enumerate(kept)}
        self.counter = _counter(self.vocabulary)
        self.idf = exact.idf(np.diff(sparse.csc_matrix(counts).indptr), counts.shape[0])
        matrix = exact.tfidf_weights(counts, self.idf)
        self.coef, self.intercept = exact.ridge(matrix, y, self.alpha)
        return self

    def matrix(self, texts: Sequence[str]) -> Any:
        assert self.counter is not None and self.idf is not None, "fit or load first"
        return exact.tfidf_weights(self.counter.transform(texts), self.idf)

    def predict_matrix(self, matrix: Any) -> np.ndarray:
        assert self.coef is not None, "fit or load first"
        return exact.predict_linear(matrix, self.coef, self.intercept)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_matrix(self.matrix(texts))

    def save(self, directory: Path, prefix: str = "text") -> None:
        assert self.idf is not None and self.coef is not None
        vocab = {term: int(i) for term, i in self.vocabulary.items()}
        (directory / f"{prefix}-vocabulary.json").write_text(
            json.dumps(vocab, ensure_ascii=False, sort_keys=True))
        _save_npz(directory / f"{prefix}-weights.npz", idf=self.idf, coef=self.coef,
                  intercept=np.atleast_1d(self.intercept))

    @classmethod
    def load(cls, saved: SavedModel, alpha: float, prefix: str = "text") -> TextRidge:
        model = cls(alpha)
        vocab = json.loads(saved.read(f"{prefix}-vocabulary.json"))
        weights = _load_npz(saved.read(f"{prefix}-weights.npz"))
        model.vocabulary = vocab
        model.counter = _counter(vocab)
        model.idf = weights["idf"]
        model.coef = weights["coef"]
        model.intercept = float(weights["intercept"][0])
        return model


def out_of_fold(texts: Sequence[str], y: np.ndarray, alpha: float, folds: int, seed: int,
                progress: Progress = _quiet) -> np.ndarray:
    """Each row's ridge prediction from a model that never saw it (the stacking feature)."""
    oof = np.zeros(len(texts))
    splitter = KFold(folds, shuffle=True, random_state=seed)
    for n, (train, held) in enumerate(splitter.split(np.arange(len(texts))), start=1):
        progress(f"ridge fold {n}/{folds}")
        part = TextRidge(alpha).fit([texts[i] for i in train], y[train])
        oof[held] = part.predict([texts[i] for i in held])
    return oof


@dataclass
class TreeSpec:
    """How to grow stage two; ``kind`` is "random-forest" or "xgboost"."""

    kind: str
    n_estimators: int
    seed: int
    n_jobs: int
    min_samples_leaf: int = 2
    max_features: float = 0.33
    learning_rate: float = 0.03
    max_depth: int = 5
    subsample: float = 0.8
    colsample: float = 0.8


class Stacked:
    """Ridge-on-text out-of-fold prediction + facts + SVD topics -> trees."""

    def __init__(self, spec: TreeSpec, alpha: float = 0.5, svd: int = 50, folds: int = 5):
        self.spec = spec
        self.alpha = alpha
        self.svd_k = svd
        self.folds = folds
        self.text: TextRidge | None = None
        self.svd_components: np.ndarray | None = None
        self.trees: Any = None

    def _design(self, stacked: np.ndarray, products: Sequence[Product], matrix: Any) -> np.ndarray:
        parts = [stacked[:, None], np.asarray(features.numeric_matrix(products), dtype=float)]
        if self.svd_components is not None and len(self.svd_components):
            parts.append(exact.matmul(matrix, self.svd_components.T))
        return np.hstack(parts).astype(np.float32)

    def fit(self, products: Sequence[Product], prices: Sequence[float],
            progress: Progress = _quiet) -> Stacked:
        texts = [features.model_text(p) for p in products]
        y = log_prices(prices)
        oof = out_of_fold(texts, y, self.alpha, self.folds, self.spec.seed, progress)
        progress("ridge on all rows")
        self.text = TextRidge(self.alpha).fit(texts, y)
        matrix = self.text.matrix(texts)
        self.svd_components = np.zeros((0, matrix.shape[1]), dtype=np.float32)
        if self.svd_k > 0:
            progress(f"SVD, {self.svd_k} topics")
            k = min(self.svd_k, matrix.shape[1] - 1, matrix.shape[0] - 1)
            self.svd_components = exact.truncated_svd(matrix, k, self.spec.seed).astype(
                np.float32)
        design = self._design(oof, products, matrix)
        progress(f"{self.spec.kind}, {self.spec.n_estimators} trees")
        self.trees = _grow(self.spec, design, y, progress)
        return self

    def predict(self, products: Sequence[Product]) -> np.ndarray:
        assert self.text is not None and self.trees is not None, "fit or load first"
        texts = [features.model_text(p) for p in products]
        matrix = self.text.matrix(texts)
        design = self._design(self.text.predict_matrix(matrix), products, matrix)
        return to_prices(self.trees.predict(design))

    def save(self, directory: Path) -> None:
        assert self.text is not None and self.svd_components is not None
        self.text.save(directory)
        _save_npz(directory / "svd.npz", components=self.svd_components)
        self.trees.save(directory)

    @classmethod
    def load(cls, saved: SavedModel, spec: TreeSpec, alpha: float, svd: int,
             folds: int) -> Stacked:
        model = cls(spec, alpha, svd, folds)
        model.text = TextRidge.load(saved, alpha)
        model.svd_components = _load_npz(saved.read("svd.npz"))["components"]
        model.trees = (Forest if spec.kind == "random-forest" else Boosted).load(saved, spec)
        return model


def _grow(spec: TreeSpec, design: np.ndarray, y: np.ndarray, progress: Progress) -> Any:
    if spec.kind == "random-forest":
        return Forest.fit(spec, design, y, progress)
    return Boosted.fit(spec, design, y, progress)


class Forest:
    """scikit-learn's RandomForestRegressor, saved as its trees' node arrays."""

    def __init__(self, trees: list[Any], n_features: int):
        self.trees = trees
        self.n_features = n_features

    @classmethod
    def fit(cls, spec: TreeSpec, design: np.ndarray, y: np.ndarray,
            progress: Progress = _quiet) -> Forest:
        from sklearn.ensemble import RandomForestRegressor

        forest = RandomForestRegressor(
            n_estimators=0, min_samples_leaf=spec.min_samples_leaf,
            max_features=spec.max_features, n_jobs=spec.n_jobs, random_state=spec.seed,
            warm_start=True)
        # Grown in steps only to show progress: with warm_start and a fixed
        # random_state the forest is the same as one grown at once.
        step = max(1, spec.n_estimators // 10)
        while forest.n_estimators < spec.n_estimators:
            forest.n_estimators = min(spec.n_estimators, forest.n_estimators + step)
            forest.fit(design, y)
            progress(f"random-forest {forest.n_estimators}/{spec.n_estimators} trees")
        return cls([e.tree_ for e in forest.estimators_], design.shape[1])

    def predict(self, design: np.ndarray) -> np.ndarray:
        design = np.ascontiguousarray(design, dtype=np.float32)
        return np.mean([t.predict(design)[:, 0].ravel() for t in self.trees], axis=0)

    def save(self, directory: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        depths = []
        for i, tree in enumerate(self.trees):
            state = tree.__getstate__()
            arrays[f"nodes{i}"] = state["nodes"]
            arrays[f"values{i}"] = state["values"]
            depths.append(int(state["max_depth"]))
        arrays["max_depth"] = np.asarray(depths)
        arrays["n_features"] = np.asarray([self.n_features])
        _save_npz(directory / "forest.npz", **arrays)

    @classmethod
    def load(cls, saved: SavedModel, spec: TreeSpec) -> Forest:
        from sklearn.tree._tree import Tree

        arrays = _load_npz(saved.read("forest.npz"))
        n_features = int(arrays["n_features"][0])
        trees = []
        for i, depth in enumerate(arrays["max_depth"]):
            tree = Tree(n_features, np.ones(1, dtype=np.intp), 1)
            nodes = arrays[f"nodes{i}"]
            tree.__setstate__({"max_depth": int(depth), "node_count": len(nodes),
                               "nodes": nodes, "values": arrays[f"values{i}"]})
            trees.append(tree)
        return cls(trees, n_features)


class Boosted:
    """XGBoost's XGBRegressor, saved in XGBoost's own JSON format."""

    def __init__(self, model: Any):
        self.model = model

    @staticmethod
    def _regressor(spec: TreeSpec, callbacks: list[Any] | None = None) -> Any:
        from xgboost import XGBRegressor

        return XGBRegressor(
            n_estimators=spec.n_estimators, learning_rate=spec.learning_rate,
            max_depth=spec.max_depth, subsample=spec.subsample,
            colsample_bytree=spec.colsample, min_child_weight=3, reg_lambda=1.0,
            tree_method="hist", n_jobs=spec.n_jobs, random_state=spec.seed,
            callbacks=callbacks)

    @classmethod
    def fit(cls, spec: TreeSpec, design: np.ndarray, y: np.ndarray,
            progress: Progress = _quiet) -> Boosted:
        from xgboost.callback import TrainingCallback

        class Report(TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                if (epoch + 1) % max(1, spec.n_estimators // 10) == 0:
                    progress(f"xgboost {epoch + 1}/{spec.n_estimators} rounds")
                return False

        model = cls._regressor(spec, [Report()])
        model.fit(design, y)
        model.set_params(callbacks=None)
        return cls(model)

    def predict(self, design: np.ndarray) -> np.ndarray:
        return self.model.predict(design)

    def save(self, directory: Path) -> None:
        self.model.get_booster().save_model(str(directory / "xgboost.json"))

    @classmethod
    def load(cls, saved: SavedModel, spec: TreeSpec) -> Boosted:
        model = cls._regressor(spec)
        model.load_model(bytearray(saved.read("xgboost.json")))
        return cls(model)
