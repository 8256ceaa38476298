"""Scoring: the error figures this field reports, and paired comparisons (the
difference's bootstrap interval, a sign-flip test's p-value, Holm's correction
for several comparisons).

A missing answer is never counted as $0: figures are over answered items,
and coverage says how many that is. Every figure is computed over the items
in id order, whatever order the mappings were built in (a run's file lists
answers in completion order): the bootstrap draws rows by position, so the
same answers must always sit in the same positions to give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from bench import exactmath

BOOTSTRAP_SEED = 42
BOOTSTRAP_SAMPLES = 2000
SIGN_FLIPS = 10000  # random sign patterns of the paired test (all of them for <= 13 items)
ALPHA = 0.05  # the family-wise error rate of the Holm verdicts
# Sums within this relative distance of the observed one count as "as extreme": the
# same count on every CPU whatever order a BLAS adds in (and ties of equal errors stay ties).
TIE_TOLERANCE = 1e-9


def band(error: float, truth: float) -> str:
    """The tester's colours: green = a hit (< $40 or < 20%), orange (< $80 or < 40%), red."""
    ratio = error / truth if truth > 0 else math.inf
    if error < 40 or ratio < 0.2:
        return "green"
    if error < 80 or ratio < 0.4:
        return "orange"
    return "red"


@dataclass(frozen=True)
class Scores:
    answered: int
    total: int
    mae: float | None
    mae_ci95: tuple[float, float] | None
    rmsle: float | None
    hit_rate: float | None
    orange_rate: float | None
    median_error: float | None
    coverage: float

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["mae_ci95"] = list(self.mae_ci95) if self.mae_ci95 else None
        return out


def _in_id_order(truth: Mapping[int, float]) -> list[int]:
    """The one order every figure is computed in (ids of mixed types sort by text)."""
    try:
        return sorted(truth)
    except TypeError:
        return sorted(truth, key=str)


def _pairs(truth: Mapping[int, float], guesses: Mapping[int, float | None]):
    ids = [i for i in _in_id_order(truth) if guesses.get(i) is not None]
    t = np.array([truth[i] for i in ids], dtype=float)
    g = np.array([guesses[i] for i in ids], dtype=float)
    return ids, t, g


def score(truth: Mapping[int, float], guesses: Mapping[int, float | None],
          *, seed: int = BOOTSTRAP_SEED, samples: int = BOOTSTRAP_SAMPLES) -> Scores:
    """Figures over the items of ``truth`` that ``guesses`` answered."""
    _, t, g = _pairs(truth, guesses)
    total = len(truth)
    if len(t) == 0:
        return Scores(0, total, None, None, None, None, None, None, 0.0)
    errors = np.abs(g - t)
    # Not np.log1p: its code depends on the processor's SIMD level (last bits differ).
    log_err = exactmath.log1p(np.maximum(g, 0.0)) - exactmath.log1p(np.maximum(t, 0.0))
    bands = [band(e, tr) for e, tr in zip(errors, t, strict=True)]
    return Scores(
        answered=len(t),
        total=total,
        mae=float(errors.mean()),
        mae_ci95=bootstrap_ci(errors, seed=seed, samples=samples),
        rmsle=float(math.sqrt(float(np.mean(log_err**2)))),
        hit_rate=bands.count("green") / len(t),
        orange_rate=bands.count("orange") / len(t),
        median_error=float(np.median(errors)),
        coverage=len(t) / total if total else 0.0,
    )


@lru_cache(maxsize=4)
def _draws(seed: int, samples: int, n: int) -> np.ndarray:
    """The resampled indices: the same for every array of length ``n`` (same seed), so
    drawn once and reused (a site compares every pair of runs); read-only."""
    idx = np.random.default_rng(seed).integers(0, n, size=(samples, n))
    idx.flags.writeable = False
    return idx


def bootstrap_ci(values: np.ndarray, *, seed: int = BOOTSTRAP_SEED,
                 samples: int = BOOTSTRAP_SAMPLES) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean (fixed seed: same file every run).

    ``values`` in a fixed order (``score`` and ``paired`` pass them in item-id
    order): the resamples are drawn by position."""
    means = values[_draws(seed, samples, len(values))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Paired:
    """A against B on the items both answered: ``diff`` = MAE(A) - MAE(B)."""

    items: int
    mae_a: float | None
    mae_b: float | None
    diff: float | None
    diff_ci95: tuple[float, float] | None
    a_wins: float | None  # share of items where A's error is strictly smaller
    b_wins: float | None
    ties: float | None
    p_value: float | None = None  # two-sided paired sign-flip test of diff == 0

    @property
    def tied(self) -> bool:
        """The interval includes zero (or is not a number): no significant difference."""
        return self.diff_ci95 is None or not (self.diff_ci95[0] > 0.0 or self.diff_ci95[1] < 0.0)

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["diff_ci95"] = list(self.diff_ci95) if self.diff_ci95 else None
        out["tied"] = self.tied
        return out


def paired(truth: Mapping[int, float], a: Mapping[int, float | None],
           b: Mapping[int, float | None], *, seed: int = BOOTSTRAP_SEED,
           samples: int = BOOTSTRAP_SAMPLES) -> Paired:
    ids = [i for i in _in_id_order(truth) if a.get(i) is not None and b.get(i) is not None]
    if not ids:
        return Paired(0, None, None, None, None, None, None, None)
    t = np.array([truth[i] for i in ids])
    ea = np.abs(np.array([a[i] for i in ids], dtype=float) - t)
    eb = np.abs(np.array([b[i] for i in ids], dtype=float) - t)
    d = ea - eb
    n = len(ids)
    return Paired(
        items=n, mae_a=float(ea.mean()), mae_b=float(eb.mean()), diff=float(d.mean()),
        diff_ci95=bootstrap_ci(d, seed=seed, samples=samples),
        a_wins=float(np.sum(d < 0) / n), b_wins=float(np.sum(d > 0) / n),
        ties=float(np.sum(d == 0) / n),
        p_value=sign_flip_p(d, seed=seed),
    )


@lru_cache(maxsize=2)
def _signs(seed: int, samples: int, n: int) -> np.ndarray:
    """``samples`` rows of +1/-1, one column per item: every pattern when there are
    at most ``samples`` of them (an exact test), else random ones (fixed seed); read-only.
    Made in place from the 0/1 codes: no further temporary of the matrix's size
    (at 10,000 x 2,000 each one is 160 MB)."""
    if 2 ** n <= samples:
        codes = np.arange(2 ** n)[:, None] >> np.arange(n)[None, :] & 1
    else:
        codes = np.random.default_rng(seed).integers(0, 2, size=(samples, n))
    signs = codes.astype(float)
    del codes
    signs *= -2.0
    signs += 1.0  # exactly +1.0 or -1.0
    signs.flags.writeable = False
    return signs


def sign_flip_p(d: np.ndarray, *, seed: int = BOOTSTRAP_SEED,
                samples: int = SIGN_FLIPS) -> float | None:
    """Two-sided p-value of "the mean paired difference ``d`` is 0" (a paired
    permutation test: under that hypothesis each difference is as likely to have
    either sign). ``d`` in item-id order: the random patterns are drawn by position.

    Exact (every sign pattern) for up to 13 items; else ``samples`` random
    patterns, counted with the observed one, so the p-value is never 0."""
    n = len(d)
    if n == 0:
        return None
    observed = abs(float(d.sum()))
    sums = np.abs(_signs(seed, samples, n) @ d)
    extreme = int(np.count_nonzero(sums >= observed * (1 - TIE_TOLERANCE)))
    if 2 ** n <= samples:
        return extreme / 2 ** n  # the identity pattern is among them
    return (extreme + 1) / (samples + 1)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the given order (None stays None): the
    k-th smallest of m is multiplied by m - k + 1, never below the one before it, at
    most 1. A comparison is significant at family-wise level ``ALPHA`` when its
    adjusted p-value is at most ``ALPHA``."""
    known = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(known)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for k, (p, i) in enumerate(known):
        running = max(running, min(1.0, (m - k) * p))
        out[i] = running
    return out
