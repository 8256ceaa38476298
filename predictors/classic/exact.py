"""Numerics that give the same bits on any machine: the classic models' stage one.

Why this module exists. The same training rows gave different test figures on
two machines of one kind (xgboost $88.89 here, $88.13 there). Not the trees:
XGBoost's ``hist`` and scikit-learn's forests grow the same trees whatever the
thread count, given the same matrix. The matrix differed, in its last bits,
and a last bit is enough to move a split. Three things put machine-dependent
bits into it, each seen here by changing one condition
(``tests/test_classic_reproducible.py``, ``python -m bench.perf.classic --repro``):

- **BLAS kernels and threads.** Ridge's conjugate-gradient solver and the
  randomised SVD call OpenBLAS, whose dot products and matrix products sum in an
  order that depends on the kernel OpenBLAS picks for the processor (the
  ``OPENBLAS_CORETYPE`` variable overrides that pick) and on its thread count
  (``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``, or the number of cores).
- **CPU-dispatched math in numpy.** ``np.log``/``np.log1p``/``np.expm1`` use
  different SIMD code on AVX2, AVX-512 and older processors
  (``NPY_DISABLE_CPU_FEATURES`` shows it): TF-IDF weights and log prices differed
  in the last bit, and so did the predictions turned back into dollars.
- **Ties in the vocabulary cut.** TF-IDF's ``max_features`` keeps the most
  frequent terms by an unstable sort that numpy also dispatches by CPU; which of
  the terms tied at the cut survived was not defined.

So here every number of stage one comes from operations whose result IEEE 754
fixes exactly (+, -, *, /, sqrt, one element at a time in numpy or Python),
sums in a fixed order (scipy's compiled sparse products, which neither thread
nor dispatch by CPU, and ``math.fsum``, which is exactly rounded), and a
logarithm and exponential built from those (``log``, ``expm1``, from
``bench.exactmath``, shared with the published figures). No BLAS, no LAPACK, no
CPU-dispatched transcendental, down to the dollars: the test trains with each SIMD
level numpy offers on its machine disabled in turn. What stays outside: scipy's
sparse products are trusted to be the same code on every machine of a kind (they
are compiled for the baseline x86-64 instruction set, without FMA), and so are
XGBoost's and the forest's tree code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse

from bench.exactmath import expm1, log, log1p

__all__ = ["dot", "expm1", "gram", "idf", "log", "log1p", "matmul", "orthonormal",
           "predict_linear", "ridge", "symmetric_eigen", "tfidf_weights", "top_terms",
           "truncated_svd"]

def dot(a: np.ndarray, b: np.ndarray) -> float:
    """Exactly rounded dot product: ``math.fsum`` of the exact elementwise products'
    roundings; independent of order, threads and processor."""
    return math.fsum((np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64))
                     .tolist())


def matmul(a: Any, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (``a`` sparse or dense, ``b`` dense) in float64 through scipy's
    compiled sparse product: one thread, a fixed order of additions, no BLAS."""
    left = a if sparse.issparse(a) else sparse.csr_matrix(np.asarray(a, dtype=np.float64))
    left = sparse.csr_matrix(left, dtype=np.float64)
    return np.asarray(left @ np.asarray(b, dtype=np.float64))


def gram(a: np.ndarray) -> np.ndarray:
    """``a.T @ a`` for a dense ``a``, symmetric to the bit."""
    g = matmul(np.ascontiguousarray(np.asarray(a, dtype=np.float64).T), a)
    return np.triu(g) + np.triu(g, 1).T


def symmetric_eigen(matrix: np.ndarray, sweeps: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of a small symmetric
    matrix by cyclic Jacobi rotations: only +, -, *, /, sqrt, so the same bits on any
    machine (LAPACK's answer depends on the BLAS kernel under it)."""
    a = np.array(matrix, dtype=np.float64)
    n = a.shape[0]
    v = np.eye(n)
    scale = math.fsum((a * a).ravel().tolist()) or 1.0
    for _ in range(sweeps):
        off = math.fsum((np.triu(a, 1) ** 2).ravel().tolist())
        if off <= scale * 1e-30:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = float(a[p, q])
                if apq == 0.0:
                    continue
                theta = (float(a[q, q]) - float(a[p, p])) / (2.0 * apq)
                if abs(theta) > 1e150:
                    t = 0.5 / theta
                else:
                    t = 1.0 / (abs(theta) + math.sqrt(theta * theta + 1.0))
                    t = t if theta >= 0 else -t
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                row_p, row_q = a[p, :].copy(), a[q, :].copy()
                a[p, :] = c * row_p - s * row_q
                a[q, :] = s * row_p + c * row_q
                col_p, col_q = a[:, p].copy(), a[:, q].copy()
                a[:, p] = c * col_p - s * col_q
                a[:, q] = s * col_p + c * col_q
                vp, vq = v[:, p].copy(), v[:, q].copy()
                v[:, p] = c * vp - s * vq
                v[:, q] = s * vp + c * vq
    values = np.diag(a).copy()
    order = np.lexsort((np.arange(n), -values))  # descending; a tie goes to the lower index
    return values[order], v[:, order]


def _cholesky_inverse(g: np.ndarray) -> np.ndarray | None:
    """``L^-1`` for the Cholesky factor ``L`` of a small positive definite ``g``, with
    exactly rounded sums; None when ``g`` is (nearly) singular."""
    n = g.shape[0]
    rows = g.tolist()
    low = [[0.0] * n for _ in range(n)]
    for j in range(n):
        pivot = rows[j][j] - math.fsum(v * v for v in low[j][:j])
        if not pivot > rows[j][j] * 1e-12:
            return None
        low[j][j] = math.sqrt(pivot)
        for i in range(j + 1, n):
            low[i][j] = (rows[i][j] - math.fsum(a * b for a, b in zip(low[i][:j], low[j][:j],
                                                                       strict=True))) / low[j][j]
    inverse = [[0.0] * n for _ in range(n)]
    for j in range(n):
        for i in range(j, n):
            known = math.fsum(low[i][m] * inverse[m][j] for m in range(j, i))
            inverse[i][j] = ((1.0 if i == j else 0.0) - known) / low[i][i]
    return np.array(inverse)


def orthonormal(y: np.ndarray) -> np.ndarray:
    """An orthonormal basis of ``y``'s columns: Cholesky QR, twice over for accuracy
    (an eigen-decomposition of the Gram matrix when ``y`` is nearly rank deficient)."""
    q = np.asarray(y, dtype=np.float64)
    for _ in range(2):
        inverse = _cholesky_inverse(gram(q))
        if inverse is None:
            values, vectors = symmetric_eigen(gram(q))
            keep = values > values[0] * 1e-13 if values[0] > 0 else values > 0
            q = matmul(q, vectors[:, keep] / np.sqrt(values[keep]))
        else:
            q = matmul(q, np.ascontiguousarray(inverse.T))
    return q


def truncated_svd(x: Any, k: int, seed: int, oversample: int = 10,
                  power_iterations: int = 5) -> np.ndarray:
    """The top ``k`` right singular vectors (rows, float64) of sparse ``x`` by
    randomised range finding (Halko et al., as scikit-learn's TruncatedSVD), in
    machine-independent arithmetic. The start matrix comes from numpy's PCG64 as
    uniform doubles (exact from the bits). Signs: each row's largest entry is
    positive."""
    x = sparse.csr_matrix(x, dtype=np.float64)
    xt = sparse.csr_matrix(x.T)
    width = min(k + oversample, min(x.shape))
    omega = np.random.default_rng(seed).random((x.shape[1], width)) * 2.0 - 1.0
    q = orthonormal(np.asarray(x @ omega))
    for _ in range(power_iterations):
        q = orthonormal(np.asarray(x @ orthonormal(np.asarray(xt @ q))))
    bt = np.asarray(xt @ q)  # (x.T q): the rows of q.T x, as columns
    values, vectors = symmetric_eigen(gram(bt))
    k = min(k, int(np.sum(values > values[0] * 1e-13)) if values[0] > 0 else 0)
    components = matmul(bt, vectors[:, :k] / np.sqrt(values[:k])).T
    rows = np.arange(components.shape[0])
    signs = np.sign(components[rows, np.argmax(np.abs(components), axis=1)])
    return components * np.where(signs == 0, 1.0, signs)[:, None]


def _cg(operator: Any, b: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """Conjugate gradients for a symmetric positive definite ``operator``, stopping at
    ``|r| <= tol |b|``; every scalar an exactly rounded dot product."""
    solution = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rr = dot(r, r)
    stop = (tol * tol) * rr
    for _ in range(max_iter):
        if rr <= stop or rr == 0.0:
            break
        ap = operator(p)
        step = rr / dot(p, ap)
        solution = solution + step * p
        r = r - step * ap
        rr_next = dot(r, r)
        p = r + (rr_next / rr) * p
        rr = rr_next
    return solution


def ridge(x: Any, y: np.ndarray, alpha: float, tol: float = 1e-5,
          max_iter: int = 5000) -> tuple[np.ndarray, float]:
    """Ridge regression with an unpenalised intercept (scikit-learn's ``Ridge``
    objective) by conjugate gradients on the centred normal equations, in float64
    with exactly rounded dot products: ``(coef, intercept)``. With more features than
    rows (TF-IDF) it solves the dual, ``(Xc Xc^T + alpha I) a = y - mean(y)``,
    ``coef = Xc^T a``, where every vector is as long as the rows."""
    x = sparse.csr_matrix(x, dtype=np.float64)
    xt = sparse.csr_matrix(x.T)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    x_mean = np.asarray(xt @ np.ones(n)).ravel() / n
    y_mean = math.fsum(y.tolist()) / n
    yc = y - y_mean
    if d > n:
        z = np.asarray(x @ x_mean).ravel()  # X x_mean
        m2 = dot(x_mean, x_mean)

        def dual(a: np.ndarray) -> np.ndarray:  # Xc Xc^T a + alpha a
            total = math.fsum(a.tolist())
            w = np.asarray(x @ np.asarray(xt @ a).ravel()).ravel() - z * total
            return w - (dot(z, a) - m2 * total) + alpha * a

        a = _cg(dual, yc, tol, max_iter)
        coef = np.asarray(xt @ a).ravel() - x_mean * math.fsum(a.tolist())
    else:
        def primal(v: np.ndarray) -> np.ndarray:  # Xc^T Xc v + alpha v
            u = np.asarray(x @ v).ravel() - dot(x_mean, v)
            return np.asarray(xt @ u).ravel() - x_mean * math.fsum(u.tolist()) + alpha * v

        b = np.asarray(xt @ yc).ravel() - x_mean * math.fsum(yc.tolist())
        coef = _cg(primal, b, tol, max_iter)
    return coef, y_mean - dot(x_mean, coef)


def predict_linear(x: Any, coef: np.ndarray, intercept: float) -> np.ndarray:
    return matmul(x, np.asarray(coef, dtype=np.float64)[:, None]).ravel() + intercept


def tfidf_weights(counts: Any, idf: np.ndarray) -> Any:
    """Sublinear TF (1 + log count) times IDF, each row scaled to unit length: the
    values scikit-learn's TfidfVectorizer gives, from machine-independent logs.
    float32 like before (the trees' and the saved models' precision)."""
    counts = sparse.csr_matrix(counts, dtype=np.float64)
    counts.sum_duplicates()
    tf = counts.copy()
    if tf.nnz:
        tf.data = (1.0 + log(tf.data)) * np.asarray(idf, dtype=np.float64)[tf.indices]
    squares = tf.multiply(tf)
    norms = np.sqrt(np.asarray(squares.sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    weighted = sparse.csr_matrix(sparse.diags(1.0 / norms) @ tf)
    return weighted.astype(np.float32)


def idf(document_frequency: np.ndarray, documents: int) -> np.ndarray:
    """Smoothed IDF, ``log((1 + n) / (1 + df)) + 1``, as scikit-learn defines it."""
    df = np.asarray(document_frequency, dtype=np.float64)
    return log((1.0 + documents) / (1.0 + df)) + 1.0


def top_terms(terms: Sequence[str], totals: np.ndarray, limit: int) -> list[str]:
    """The ``limit`` most frequent terms; ties by the term itself (a total order, so
    any sort gives the same cut)."""
    order = sorted(range(len(terms)), key=lambda i: (-int(totals[i]), terms[i]))
    return sorted(terms[i] for i in order[:limit])
