"""``knn``: the price of a product from its k most similar training products.

The neighbours' log prices are averaged with weights ``softmax(cosine / T)``
(T = ``temperature``): a geometric mean that leans on the closest matches.
It searches the whole pool by default (``train.jsonl`` and
``train-extra.jsonl``, 12,678 products). The defaults were chosen by
leave-one-out error on the pool (``python -m bench.perf.retrieval --cv``),
never on test items: on the 4,017 ``train.jsonl`` rows k=10, T=0.1 gave $93.48
(k=10 uniform $96.88, k=1 $118.70); on the whole pool k=10, T=0.1 gives $69.62,
within $0.24 of the grid's best (k=20, T=0.05, $69.38; k=1 $86.86).
Free, and a useful ensemble member; on its own retrieval is a weak predictor.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.registry import register
from bench.types import Example, Product
from predictors.classic.baselines import ClassicPredictor, _versions
from predictors.classic.store import SavedModel
from predictors.retrieval import embeddings
from predictors.retrieval.embeddings import Embedder, document
from predictors.retrieval.index import TrainingIndex, build_index

_CODE = ("embeddings.py", "index.py", "knn.py")


def code_digest() -> str:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _CODE:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def weighted_log_price(prices: Sequence[float], sims: Sequence[float],
                       temperature: float) -> float:
    """exp of the softmax(sim / T)-weighted mean of log(1 + price)."""
    top = max(sims)
    weights = [math.exp((s - top) / temperature) for s in sims]
    total = sum(weights)
    mean = sum(w * math.log1p(p) for w, p in zip(weights, prices, strict=True)) / total
    return math.expm1(mean)


class KnnModel:
    """A fitted knn: the training index plus the weighting."""

    def __init__(self, index: TrainingIndex, k: int, temperature: float):
        self.index, self.k, self.temperature = index, k, temperature

    def predict(self, products: Sequence[Product]) -> list[float]:
        prices = self.index.prices
        found = self.index.neighbours([document(p) for p in products], self.k)
        return [weighted_log_price([prices[r] for r, _ in pairs], [s for _, s in pairs],
                                   self.temperature) for pairs in found]


def loo_mae(index: TrainingIndex, rows: Sequence[int], ks: Sequence[int],
            temperatures: Sequence[float]) -> dict[tuple[int, float], float]:
    """Leave-one-out MAE in dollars on ``rows`` of the index (each row's own entry
    excluded from its neighbours), for every (k, temperature); one search."""
    examples = index.examples
    prices = index.prices
    found = index.neighbours([document(examples[r].product) for r in rows], max(ks),
                             exclude_self=True)
    out = {}
    for k in ks:
        for t in temperatures:
            errors = [abs(weighted_log_price([prices[j] for j, _ in pairs[:k]],
                                             [s for _, s in pairs[:k]], t) - examples[r].price)
                      for r, pairs in zip(rows, found, strict=True)]
            out[(k, t)] = sum(errors) / len(errors)
    return out


@register("knn", kind="classic")
class KnnPredictor(ClassicPredictor):
    """Price from the k nearest training products (sentence embeddings, cosine)."""

    kind_name = "knn"
    libraries = ("sentence-transformers", "numpy")

    def __init__(self, ctx: Any = None, train_size: int | None = None,
                 include_extra: bool = True, seed: int = 42, n_jobs: int = 2,
                 k: int = 10, temperature: float = 0.1,
                 embedding_model: str | None = None):
        super().__init__(ctx, train_size, include_extra, seed, n_jobs)
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, not {temperature}")
        self.k = k
        self.temperature = temperature
        self.embedding_model = embedding_model
        self._embedder: Embedder | None = None

    def embedder(self) -> Embedder:
        if self._embedder is None:
            cache = self.ctx.cache_dir if self.ctx is not None else None
            self._embedder = Embedder(self.embedding_model, cache)
        return self._embedder

    def params(self) -> dict[str, Any]:
        return {**super().params(), "k": self.k, "temperature": self.temperature,
                "embedding": self.embedder().identity}

    def _key_parts(self, examples: Sequence[Example]) -> dict[str, Any]:
        parts = super()._key_parts(examples)
        parts["versions"] = {**_versions(self.libraries), "code": code_digest()}
        return parts

    def unavailable(self) -> str | None:
        return embeddings.model_problem(self.embedding_model)

    def _models_dir(self) -> Path | None:
        return self.ctx.models_dir if self.ctx is not None else None

    def _fit(self, products: list[Product], prices: list[float]) -> KnnModel:
        examples = [Example(p, price) for p, price in zip(products, prices, strict=True)]
        index = build_index(examples, self.embedder(), self._models_dir())
        return KnnModel(index, self.k, self.temperature)

    def _save(self, model: KnnModel, directory: Path) -> None:
        # The vectors live in the shared embedding index; this names which one.
        (directory / "knn.json").write_text(json.dumps({
            "k": model.k, "temperature": model.temperature,
            "rows": model.index.rows_fingerprint, "embedding": self.embedder().identity}))

    def _load(self, saved: SavedModel) -> KnnModel:
        info = json.loads(saved.read("knn.json"))
        index = build_index(self.training_examples(), self.embedder(), self._models_dir())
        return KnnModel(index, int(info["k"]), float(info["temperature"]))

