"""The processor conditions a figure must not depend on, as environments for a
subprocess: each SIMD level numpy dispatches to on this machine, disabled in turn
(with every level above it: ``bench.exactmath.without_levels``), and OpenBLAS on
another kernel with one thread.

Read from numpy at run time, so whatever machine runs the tests exercises every
level it has: a machine with AVX-512 checks AVX-512 against AVX2 against the
baseline; one without checks what it has.
"""

from __future__ import annotations

import platform

from bench.exactmath import dispatch_levels, without_levels

__all__ = ["conditions", "dispatch_levels"]


def conditions() -> list[tuple[str, dict[str, str]]]:
    """(label, environment) pairs, each to compare with a plain run: one per SIMD level,
    plus OpenBLAS's Haswell kernel with one thread where the processor has AVX2 (the
    kernel needs it)."""
    out = [(label, {"NPY_DISABLE_CPU_FEATURES": value}) for label, value in without_levels()]
    if platform.machine().lower() in ("x86_64", "amd64") and _has_avx2():
        out.append(("OpenBLAS Haswell kernel, 1 thread",
                    {"OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "1",
                     "OPENBLAS_NUM_THREADS": "1"}))
    return out


def _has_avx2() -> bool:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__  # type: ignore[no-redef]
    return bool(__cpu_features__.get("AVX2"))
