"""The processor conditions a figure must not depend on, as environments for a
subprocess: each SIMD level numpy dispatches to on this machine, disabled in turn
(with every level above it), OpenBLAS on another kernel, other thread counts.

Read from numpy at run time, so whatever machine runs the tests exercises every
level it has: a machine with AVX-512 checks AVX-512 against AVX2 against the
baseline; one without checks what it has.
"""

from __future__ import annotations

import platform


def _numpy_cpu() -> tuple[list[str], list[str], dict[str, bool]]:
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as umath  # type: ignore[no-redef]
    return (list(umath.__cpu_baseline__), list(umath.__cpu_dispatch__),
            dict(umath.__cpu_features__))


def dispatch_levels() -> list[str]:
    """numpy's dispatch targets above its baseline that this processor runs, lowest
    first (numpy lists them in that order): e.g. X86_V3, X86_V4, AVX512_ICL."""
    baseline, dispatch, features = _numpy_cpu()
    return [name for name in dispatch if features.get(name) and name not in baseline]


def conditions() -> list[tuple[str, dict[str, str]]]:
    """(label, environment) pairs, each to compare with a plain run: one per SIMD level
    (that level and all above it disabled), plus OpenBLAS's Haswell kernel with one
    thread where the processor has AVX2 (the kernel needs it)."""
    levels = dispatch_levels()
    out = [(f"numpy without {' '.join(levels[i:])}",
            {"NPY_DISABLE_CPU_FEATURES": " ".join(levels[i:])})
           for i in range(len(levels) - 1, -1, -1)]
    _, _, features = _numpy_cpu()
    if platform.machine().lower() in ("x86_64", "amd64") and features.get("AVX2"):
        out.append(("OpenBLAS Haswell kernel, 1 thread",
                    {"OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "1",
                     "OPENBLAS_NUM_THREADS": "1"}))
    return out
