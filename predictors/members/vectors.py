"""``embedding-ridge``: ridge regression in log price on a product's sentence
embedding (all-MiniLM-L6-v2 by default, the vectors ``knn`` and ``rag`` share)
beside TF-IDF word 1-2 grams of its text.

The embedding carries meaning the word counts miss (a "kettle" near a
"teapot"), the TF-IDF columns the exact words and model numbers the embedding
blurs; one ridge weighs both (the embedding block scaled by ``embedding_weight``
so its 384 dense columns are not drowned by the sparse ones). Vectors come from
the embedder's store, so every fold of an ensemble reuses them.

Saved as the vocabulary (JSON) and ``.npz`` arrays (IDF, coefficients), read
back without pickle.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.registry import register
from bench.types import Example, Product
from predictors.classic.baselines import ClassicPredictor, _versions
from predictors.classic.store import SavedModel
from predictors.members.digest import code_digest


def _vectorizer(vocabulary: dict[str, int] | None = None) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), min_df=1 if vocabulary else 2,
                           sublinear_tf=True, strip_accents="unicode", max_features=200_000,
                           vocabulary=vocabulary, dtype=__import__("numpy").float64)


class EmbeddingRidge:
    """TF-IDF vocabulary and IDF, the embedding weight, and the ridge's coefficients."""

    def __init__(self, vocabulary: dict[str, int], idf: Any, coef: Any, intercept: float,
                 embedding_weight: float):
        self.vocabulary, self.idf, self.coef = vocabulary, idf, coef
        self.intercept, self.embedding_weight = intercept, embedding_weight
        self._vectorizer: Any = None

    def design(self, texts: Sequence[str], vectors: Any) -> Any:
        from scipy import sparse

        if self._vectorizer is None:
            self._vectorizer = _vectorizer(self.vocabulary)
            self._vectorizer.idf_ = self.idf
        words = self._vectorizer.transform(texts)
        return sparse.hstack([words, sparse.csr_matrix(vectors * self.embedding_weight)]).tocsr()

    @classmethod
    def fit(cls, texts: Sequence[str], vectors: Any, prices: Sequence[float], alpha: float,
            embedding_weight: float) -> EmbeddingRidge:
        from sklearn.linear_model import Ridge

        from predictors.classic.models import log_prices

        vectorizer = _vectorizer().fit(texts)
        vocabulary = {t: int(i) for t, i in vectorizer.vocabulary_.items()}
        model = cls(vocabulary, vectorizer.idf_, None, 0.0, embedding_weight)
        ridge = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-6, max_iter=2000)
        ridge.fit(model.design(texts, vectors), log_prices(prices))
        model.coef, model.intercept = ridge.coef_, float(ridge.intercept_)
        return model

    def predict_logs(self, texts: Sequence[str], vectors: Any) -> Any:
        return self.design(texts, vectors) @ self.coef + self.intercept

    def save(self, directory: Path) -> None:
        import numpy as np

        (directory / "vocabulary.json").write_text(
            json.dumps(self.vocabulary, ensure_ascii=False, sort_keys=True))
        with (directory / "ridge.npz").open("wb") as handle:
            np.savez_compressed(handle, idf=self.idf, coef=self.coef,
                                scalars=np.asarray([self.intercept, self.embedding_weight]))

    @classmethod
    def load(cls, saved: SavedModel) -> EmbeddingRidge:
        import numpy as np

        vocabulary = json.loads(saved.read("vocabulary.json"))
        with np.load(io.BytesIO(saved.read("ridge.npz")), allow_pickle=False) as z:
            idf, coef, scalars = z["idf"], z["coef"], z["scalars"]
        return cls(vocabulary, idf, coef, float(scalars[0]), float(scalars[1]))


# Not in `run all`, as mlp: embeddings and ridge in ordinary BLAS arithmetic.
@register("embedding-ridge", kind="classic", in_all=False)
class EmbeddingRidgePredictor(ClassicPredictor):
    """Ridge in log price on sentence embeddings (all-MiniLM-L6-v2) plus TF-IDF words."""

    kind_name = "embedding-ridge"
    libraries = ("scikit-learn", "numpy", "scipy", "sentence-transformers")

    def __init__(self, ctx: Any = None, train_size: int | None = None,
                 include_extra: bool = True, seed: int = 42, n_jobs: int = 2,
                 alpha: float = 1.0, embedding_weight: float = 1.0,
                 embedding_model: str | None = None):
        super().__init__(ctx, train_size, include_extra, seed, n_jobs)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, not {alpha}")
        if embedding_weight < 0:
            raise ValueError(f"embedding_weight cannot be negative, not {embedding_weight}")
        self.alpha, self.embedding_weight = alpha, embedding_weight
        self.embedding_model = embedding_model
        self._embedder: Any = None

    def embedder(self) -> Any:
        if self._embedder is None:
            from predictors.retrieval.embeddings import Embedder

            cache = self.ctx.cache_dir if self.ctx is not None else None
            self._embedder = Embedder(self.embedding_model, cache)
        return self._embedder

    def params(self) -> dict[str, Any]:
        return {**super().params(), "alpha": self.alpha,
                "embedding_weight": self.embedding_weight,
                "embedding": self.embedder().identity}

    def _key_parts(self, examples: Sequence[Example]) -> dict[str, Any]:
        parts = super()._key_parts(examples)
        parts["versions"] = {**_versions(self.libraries), "code": code_digest(__file__)}
        return parts

    def unavailable(self) -> str | None:
        from predictors.retrieval import embeddings

        return embeddings.model_problem(self.embedding_model) or super().unavailable()

    def _inputs(self, products: Sequence[Product]) -> tuple[list[str], Any]:
        from predictors.classic import features
        from predictors.retrieval.embeddings import document

        vectors = self.embedder().embed([document(p) for p in products])
        return [features.model_text(p) for p in products], vectors

    def _fit(self, products: list[Product], prices: list[float]) -> EmbeddingRidge:
        texts, vectors = self._inputs(products)
        return EmbeddingRidge.fit(texts, vectors, prices, self.alpha, self.embedding_weight)

    def _predict(self, model: EmbeddingRidge, products: list[Product]) -> Sequence[float]:
        from predictors.classic import models

        return models.to_prices(model.predict_logs(*self._inputs(products)))

    def _load(self, saved: SavedModel) -> EmbeddingRidge:
        return EmbeddingRidge.load(saved)
