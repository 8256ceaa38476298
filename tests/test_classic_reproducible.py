"""The classic models give the same figures on any machine of one kind.

Another machine differs from this one in what picks the order of floating-point
sums: how many threads BLAS and OpenMP use, which SIMD code numpy dispatches to,
the working directory and environment. Each training here runs in its own
process under one such set of conditions; the predictions must agree to the bit.
(``OPENBLAS_CORETYPE`` changes the BLAS kernel too, and did change the figures,
but some machines here need it set, so tests leave it alone: see
``python -m bench.perf.classic --repro`` for that check.)
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse

from predictors.classic import exact
from tests.conftest import ROOT

SCRIPT = """
import json, sys
from pathlib import Path
from bench import registry
from bench.context import Context
ctx = Context(data_dir=Path(sys.argv[1]))
examples, _ = ctx.train_examples(include_extra=True, size=700, seed=3)
products = ctx.benchmark.products()[:80]
small = {"n_estimators": "40", "folds": "3", "svd": "20"}
out = {}
for name, params in (("linear", {}), ("xgboost", small), ("random-forest", small)):
    model = registry.build(name, {**params, "n_jobs": sys.argv[2]}, None)
    model.fit(examples)
    # The model's own output, before rounding to cents: every bit must agree.
    out[name] = [float(p).hex() for p in model._predict(model._model, products)]
    out[name + " (cents)"] = [p.price for p in model.predict(products)]
print(json.dumps(out))
"""


def _numpy_feature_to_disable() -> str | None:
    """A SIMD level numpy dispatches to on this processor, above its baseline."""
    from numpy._core._multiarray_umath import __cpu_baseline__, __cpu_features__

    for name in ("X86_V4", "X86_V3", "AVX512F", "AVX2"):
        if __cpu_features__.get(name) and name not in __cpu_baseline__:
            return name
    return None


def _train(data_dir, tmp_path, n_jobs: int, **env: str) -> dict[str, list[float]]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(data_dir), str(n_jobs)],
                          capture_output=True, text=True, env=full_env, cwd=tmp_path,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_training_under_other_threads_and_cpu_dispatch_gives_identical_predictions(
        data_dir, tmp_path):
    one = tmp_path / "one"
    two = tmp_path / "two"
    one.mkdir()
    two.mkdir()
    single = _train(data_dir, one, 1, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    other = {"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3", "LC_ALL": "C",
             "PYTHONHASHSEED": "12345"}
    feature = _numpy_feature_to_disable()
    if feature:
        other["NPY_DISABLE_CPU_FEATURES"] = feature
    many = _train(data_dir, two, 3, **other)
    assert len(single) == 6
    for name, prices in single.items():
        assert len(prices) == 80, name
        assert prices == many[name], name


def test_log_is_accurate_and_exact_in_ieee_operations():
    values = np.concatenate([np.random.default_rng(1).random(20000) * 1e5 + 1e-6,
                             [1.0, 2.0, 0.5, 1e-300, 1e300, 12345.678]])
    mine = exact.log(values)
    reference = np.array([math.log(v) for v in values])
    assert np.all(np.abs(mine - reference) <= 4 * np.spacing(np.abs(reference)))
    assert exact.log([1.0])[0] == 0.0
    assert np.array_equal(exact.log1p([0.0, 9.99]), exact.log([1.0, 10.99]))
    with pytest.raises(ValueError):
        exact.log([0.0])


def test_ridge_solves_scikit_learns_objective():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x = sparse.random(400, 900, density=0.02, random_state=2, format="csr")
    y = np.asarray(x @ rng.random(900)).ravel() + rng.random(400)
    coef, intercept = exact.ridge(x, y, 0.5, tol=1e-10)
    reference = Ridge(alpha=0.5, tol=1e-12, solver="sparse_cg").fit(x, y)
    assert np.allclose(coef, reference.coef_, atol=1e-6)
    assert intercept == pytest.approx(reference.intercept_, abs=1e-6)
    assert np.allclose(exact.predict_linear(x, coef, intercept), reference.predict(x),
                       atol=1e-6)


def test_truncated_svd_finds_the_leading_subspace():
    rng = np.random.default_rng(5)
    left = np.linalg.qr(rng.standard_normal((300, 6)))[0]
    right = np.linalg.qr(rng.standard_normal((200, 6)))[0]
    strengths = np.array([50.0, 30.0, 20.0, 10.0, 5.0, 2.0])
    x = sparse.csr_matrix(left @ np.diag(strengths) @ right.T
                          + 1e-3 * rng.standard_normal((300, 200)))
    components = exact.truncated_svd(x, 4, seed=1)
    assert components.shape == (4, 200)
    assert np.allclose(components @ components.T, np.eye(4), atol=1e-10)
    # Each component is the matching right singular vector, up to sign.
    assert np.allclose(np.abs(components @ right[:, :4]), np.eye(4), atol=1e-3)
    assert np.array_equal(components, exact.truncated_svd(x, 4, seed=1))
    for row in components:
        assert row[np.argmax(np.abs(row))] > 0


def test_vocabulary_cut_breaks_ties_by_the_term():
    terms = ["b", "a", "d", "c"]
    assert exact.top_terms(terms, np.array([5, 3, 3, 3]), 2) == ["a", "b"]
    assert exact.top_terms(terms[::-1], np.array([3, 3, 3, 5]), 2) == ["a", "b"]
