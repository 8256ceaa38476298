"""The classic models give the same figures on any machine of one kind.

Another machine differs from this one in what picks the order of floating-point
sums and the code of a logarithm: how many threads BLAS and OpenMP use, which
SIMD code numpy dispatches to, which kernel OpenBLAS picks, the working directory
and environment. Each training here runs in its own process under one such set of
conditions (``tests/simd.py``: every SIMD level this processor offers, disabled in
turn); the predictions must agree to the bit.
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
from tests import simd
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
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
out["simd"] = [n for n in __cpu_dispatch__ if __cpu_features__.get(n)]
print(json.dumps(out))
"""


def _train(data_dir, tmp_path, n_jobs: int, **env: str) -> dict[str, list]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(data_dir), str(n_jobs)],
                          capture_output=True, text=True, env=full_env, cwd=tmp_path,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_training_under_other_threads_and_cpu_dispatch_gives_identical_predictions(
        data_dir, tmp_path):
    """Against a plain one-thread run: every SIMD level numpy dispatches to on this
    processor disabled in turn (with the levels above it; 3 threads), and OpenBLAS's
    Haswell kernel, so that no machine running this can hide a dispatched operation."""
    one = tmp_path / "one"
    one.mkdir()
    single = _train(data_dir, one, 1, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    simd_on = single.pop("simd")
    assert simd_on == simd.dispatch_levels()
    other = {"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3", "LC_ALL": "C",
             "PYTHONHASHSEED": "12345"}
    assert len(single) == 6
    for n, (label, env) in enumerate(simd.conditions()):
        folder = tmp_path / f"other{n}"
        folder.mkdir()
        many = _train(data_dir, folder, 1 if "OPENBLAS_CORETYPE" in env else 3,
                      **{**other, **env})
        disabled = set(env.get("NPY_DISABLE_CPU_FEATURES", "").split())
        assert not disabled & set(many.pop("simd")), f"{label}: numpy ignored the switch"
        for name, prices in single.items():
            assert len(prices) == 80, name
            differ = sum(a != b for a, b in zip(prices, many[name], strict=True))
            assert prices == many[name], f"{name}, {label}: {differ} of 80 differ"


def test_exact_math_gives_the_same_bits_at_every_simd_level(tmp_path):
    """``bench.exactmath`` (the classic models' and the published figures' log and
    exp) under each SIMD level: the same bits (numpy's own differ in the last bit
    between X86_V3 and X86_V4 for some of these inputs)."""
    script = (
        "import hashlib, numpy as np\n"
        "from bench import exactmath\n"
        "x = np.random.default_rng(0).random(50000) * 2000\n"
        "def h(a): return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()\n"
        "print(h(exactmath.log1p(x)), h(exactmath.log(x + 1e-3)),"
        " h(exactmath.expm1(x / 200 - 3)), h(exactmath.expm1((x / 200).astype(np.float32))))\n")

    def digests(env: dict[str, str]) -> list[str]:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                              cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.split()

    plain = digests({})
    assert len(plain) == 4
    for label, env in simd.conditions():
        assert digests(env) == plain, label


def test_expm1_is_accurate():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.uniform(-45, 709, 50000), rng.uniform(-1e-3, 1e-3, 5000),
                             [0.0, 1e-300, 1.0, math.log(2), 36.0, 40.0, -50.0, 709.78]])
    mine = exact.expm1(values)
    reference = np.array([math.expm1(v) for v in values])
    assert np.all(np.abs(mine - reference) <= 4 * np.spacing(np.abs(reference)))
    assert exact.expm1([800.0])[0] == math.inf
    assert exact.expm1([0.0])[0] == 0.0
    assert exact.expm1(np.array([1.5], dtype=np.float32)).dtype == np.float32
    prices = np.array([math.expm1(v) for v in 1.0 + np.random.default_rng(4).random(1000) * 8])
    assert np.allclose(exact.expm1(exact.log1p(prices)), prices, rtol=1e-13, atol=0)
    with pytest.raises(ValueError):
        exact.expm1([math.nan])


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
