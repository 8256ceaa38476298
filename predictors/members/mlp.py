"""``mlp``: a small neural network on hashed text features, in log price.

The product text (``features.model_text``: description, category, brand) is
hashed into ``2**bits`` word 1-2 gram counts (no vocabulary to store), weighted
by sublinear TF-IDF learnt on the training rows and L2-normalised; a
multi-layer perceptron (scikit-learn's ``MLPRegressor``, ReLU, Adam, fixed seed,
``epochs`` passes) predicts the standardised log(1 + price). The network sees
word pairs the ridge reads linearly through non-linear hidden units, which is
what makes its errors differ from the trees' (see ``bench show ensemble``).

Saved as ``.npz`` arrays (weights, biases, IDF, target scale) and predicted in
numpy, so loading needs no pickle and no scikit-learn estimator.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.registry import register
from bench.types import Example, Product
from predictors.classic.baselines import ClassicPredictor, _versions
from predictors.classic.store import SavedModel
from predictors.members.digest import code_digest


def hashed_counts(texts: Sequence[str], bits: int) -> Any:
    """Word 1-2 gram counts hashed into ``2**bits`` columns (a sparse matrix)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=2 ** bits, ngram_range=(1, 2), alternate_sign=False,
                             norm=None, strip_accents="unicode").transform(texts)


def tfidf(counts: Any, idf: Any) -> Any:
    """Sublinear TF times IDF, rows L2-normalised."""
    import numpy as np
    from sklearn.preprocessing import normalize

    weighted = counts.astype(np.float64)
    weighted.data = 1.0 + np.log(weighted.data)
    return normalize(weighted.multiply(idf).tocsr())


class MLPModel:
    """The fitted network: IDF, layers, and the target's mean and scale."""

    def __init__(self, bits: int, idf: Any, weights: list[Any], biases: list[Any],
                 mean: float, scale: float):
        self.bits, self.idf, self.weights, self.biases = bits, idf, weights, biases
        self.mean, self.scale = mean, scale

    @classmethod
    def fit(cls, texts: Sequence[str], prices: Sequence[float], bits: int,
            hidden: tuple[int, ...], alpha: float, epochs: int, seed: int) -> MLPModel:
        import numpy as np
        from sklearn.neural_network import MLPRegressor

        from predictors.classic.models import log_prices

        counts = hashed_counts(texts, bits)
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        idf = np.log((1 + counts.shape[0]) / (1 + df)) + 1.0
        y = log_prices(prices)
        mean, scale = float(y.mean()), float(y.std() or 1.0)
        net = MLPRegressor(hidden_layer_sizes=hidden, alpha=alpha, batch_size=128,
                           learning_rate_init=1e-3, max_iter=epochs, random_state=seed,
                           early_stopping=False, n_iter_no_change=epochs + 1, tol=0.0,
                           shuffle=True)
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():  # a fixed number of epochs is the point
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(tfidf(counts, idf), (y - mean) / scale)
        return cls(bits, idf, list(net.coefs_), list(net.intercepts_), mean, scale)

    def predict_logs(self, texts: Sequence[str]) -> Any:
        import numpy as np

        h: Any = tfidf(hashed_counts(texts, self.bits), self.idf)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = np.asarray(h @ w) + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0] * self.scale + self.mean

    def save(self, directory: Path) -> None:
        import numpy as np

        arrays = {"idf": self.idf, "target": np.asarray([self.mean, self.scale])}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        with (directory / "mlp.npz").open("wb") as handle:
            np.savez_compressed(handle, **arrays)
        (directory / "mlp.json").write_text(json.dumps({"bits": self.bits,
                                                        "layers": len(self.weights)}))

    @classmethod
    def load(cls, saved: SavedModel) -> MLPModel:
        import io

        import numpy as np

        shape = json.loads(saved.read("mlp.json"))
        with np.load(io.BytesIO(saved.read("mlp.npz")), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        layers = int(shape["layers"])
        return cls(int(shape["bits"]), arrays["idf"], [arrays[f"w{i}"] for i in range(layers)],
                   [arrays[f"b{i}"] for i in range(layers)], float(arrays["target"][0]),
                   float(arrays["target"][1]))


# Not in `run all`: its training is ordinary BLAS arithmetic, so its figures are
# not the same bytes on every CPU, and the published board holds only those that are.
@register("mlp", kind="classic", in_all=False)
class MLPPredictor(ClassicPredictor):
    """A small neural network (MLP) on hashed word 1-2 gram TF-IDF features, in log price."""

    kind_name = "mlp"

    def __init__(self, ctx: Any = None, train_size: int | None = None,
                 include_extra: bool = True, seed: int = 42, n_jobs: int = 2,
                 bits: int = 14, hidden: str = "128", alpha: float = 1e-4, epochs: int = 10):
        super().__init__(ctx, train_size, include_extra, seed, n_jobs)
        try:
            layers = tuple(int(h) for h in str(hidden).split("x"))
        except ValueError:
            layers = ()
        if not layers or min(layers) < 1:
            raise ValueError(f"hidden must be layer widths joined by x (256, 512x128), "
                             f"not {hidden!r}")
        if not 10 <= bits <= 22:
            raise ValueError(f"bits must be between 10 and 22, not {bits}")
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, not {epochs}")
        if alpha < 0:
            raise ValueError(f"alpha cannot be negative, not {alpha}")
        self.bits, self.hidden, self.alpha, self.epochs = bits, layers, alpha, epochs

    def params(self) -> dict[str, Any]:
        return {**super().params(), "bits": self.bits,
                "hidden": "x".join(map(str, self.hidden)), "alpha": self.alpha,
                "epochs": self.epochs}

    def _key_parts(self, examples: Sequence[Example]) -> dict[str, Any]:
        parts = super()._key_parts(examples)
        parts["versions"] = {**_versions(self.libraries), "code": code_digest(__file__)}
        return parts

    def _fit(self, products: list[Product], prices: list[float]) -> MLPModel:
        from predictors.classic import features

        return MLPModel.fit([features.model_text(p) for p in products], prices, self.bits,
                            self.hidden, self.alpha, self.epochs, self.seed)

    def _predict(self, model: MLPModel, products: list[Product]) -> Sequence[float]:
        from predictors.classic import features, models

        return models.to_prices(model.predict_logs([features.model_text(p) for p in products]))

    def _load(self, saved: SavedModel) -> MLPModel:
        return MLPModel.load(saved)
