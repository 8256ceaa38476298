"""Logarithms and exponentials that give the same bits on every x86-64 processor.

numpy picks the code of ``np.log``, ``np.log1p``, ``np.exp``, ``np.expm1`` (and
``log10``...) at run time by the processor's SIMD level (X86_V3 = AVX2, X86_V4 =
AVX-512, ...; ``NPY_DISABLE_CPU_FEATURES`` shows it), and the levels disagree in
the last bit for some inputs. A last bit is enough to move a tree's split or a
published figure's 17th digit. So the functions here use only operations whose
result IEEE 754 fixes exactly, one element at a time: ``+ - * /``, ``frexp``,
``ldexp``, ``rint`` and comparisons. They are accurate to a few units in the last
place (``tests/test_classic_reproducible.py`` checks them against ``math``).

Used by the published figures (``bench.metrics``: RMSLE) and by the classic
models (``predictors.classic.exact``, whose code digest includes this file).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_LN2 = 0.6931471805599453  # math.log(2), written out: no libm call at run time
_SQRT_HALF = 0.7071067811865476
# ln 2 split in two (fdlibm's constants): k * _LN2_HI is exact for |k| < 2**20.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
# Beyond these, expm1 is inf or rounds to -1.
_EXP_OVERFLOW = 709.782712893384
_EXPM1_FLOOR = -40.0


def dispatch_levels() -> list[str]:
    """numpy's SIMD dispatch targets above its baseline that this processor runs, lowest
    first (e.g. X86_V3, X86_V4, AVX512_ICL, AVX512_SPR). Disabling one in
    ``NPY_DISABLE_CPU_FEATURES`` does not disable those above it: to run as a machine
    without level N, disable N and every level after it."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as umath  # type: ignore[no-redef]
    features = umath.__cpu_features__
    return [n for n in umath.__cpu_dispatch__
            if features.get(n) and n not in umath.__cpu_baseline__]


def without_levels() -> list[tuple[str, str]]:
    """(label, ``NPY_DISABLE_CPU_FEATURES`` value) for each level this processor offers,
    highest first: that level and all above it disabled."""
    levels = dispatch_levels()
    return [(f"numpy without {' '.join(levels[i:])}", " ".join(levels[i:]))
            for i in range(len(levels) - 1, -1, -1)]


def _array(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def log(values: Any) -> np.ndarray:
    """Natural logarithm of positive values (``inf`` for ``inf``), in float64:
    ``x = m * 2**e`` with ``m`` in [sqrt(1/2), sqrt(2)), then ``log(m) = 2 atanh(s)``,
    ``s = (m - 1) / (m + 1)``, by its series (|s| < 0.172, so 13 terms reach double precision)."""
    x = _array(values)
    if np.any(np.isnan(x)) or np.any(x <= 0):
        raise ValueError("log needs positive values")
    infinite = np.isinf(x)
    x = np.where(infinite, 1.0, x)
    m, e = np.frexp(x)  # exact: x = m * 2**e, m in [0.5, 1)
    low = m < _SQRT_HALF
    m = np.where(low, m * 2.0, m)  # exact (a power of two)
    e = e - low.astype(e.dtype)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    series = np.zeros_like(s)
    for k in range(25, 0, -2):  # Horner: 1 + s2/3 + s2**2/5 + ... + s2**12/25
        series = series * s2 + 1.0 / k
    return np.where(infinite, np.inf, e.astype(np.float64) * _LN2 + 2.0 * s * series)


def log1p(values: Any) -> np.ndarray:
    """``log(1 + x)`` for x > -1 in the range of prices (``1 + x`` is rounded first, so
    tiny ``x`` lose relative precision: fine for prices in dollars)."""
    return log(1.0 + _array(values))


def expm1(values: Any) -> np.ndarray:
    """``exp(x) - 1`` for finite ``x``: ``x = k ln2 + r`` with |r| <= ln2 / 2 (Cody and
    Waite's two-part ln 2), ``exp(r) - 1`` by its Taylor series in Horner form (18 terms),
    then ``2**k (1 + (exp(r) - 1)) - 1`` summed so that nothing cancels. float32 input
    gives float32 (rounded from the float64 result), like ``np.expm1``."""
    given = np.asarray(values)
    x = _array(given)
    if np.any(~np.isfinite(x)):
        raise ValueError("expm1 needs finite values")
    inside = np.clip(x, _EXPM1_FLOOR, _EXP_OVERFLOW)
    k = np.rint(inside * _INV_LN2)
    r = (inside - k * _LN2_HI) - k * _LN2_LO
    series = np.ones_like(r)
    for j in range(18, 1, -1):  # 1 + r/2 (1 + r/3 (1 + ...)) = (exp(r) - 1) / r
        series = 1.0 + (r / j) * series
    small = r * series  # exp(r) - 1
    ki = k.astype(np.int64)
    low = np.minimum(ki, 56)  # 2**k - 1 is exact up to k = 53; beyond, the 1 is lost
    out = np.where(ki > 56, np.ldexp(1.0 + small, ki),
                   np.ldexp(small, low) + (np.ldexp(1.0, low) - 1.0))
    out = np.where(x > _EXP_OVERFLOW, np.inf, np.where(x < _EXPM1_FLOOR, -1.0, out))
    if given.dtype == np.float32:
        return out.astype(np.float32)
    return out
