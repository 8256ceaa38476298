"""The ensemble's blend: non-negative least squares over the members' guesses,
their min and their max, plus a free intercept.

Why this form: on a few hundred validation rows, ordinary least squares over
strongly correlated members (every member tracks the price) gives large
weights of opposite signs that cancel on the slice and blow up elsewhere;
non-negative weights cannot cancel, so the blend stays a weighted average-like
mix and at most ``members + 2`` numbers are learnt. Two scales are tried:
log prices (errors are multiplicative, prices span $1 to $1,000) and dollars
(the headline metric); ``auto`` keeps the one with the lower 5-fold
cross-validated mean absolute error on the slice itself.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FORMS = ("log", "dollars")
FLOOR = 0.01  # prices below a cent are treated as a cent before taking logs


def features(prices: Sequence[Sequence[float]], form: str) -> Any:
    """Per row: each member's guess, their min and their max, on the form's scale."""
    import numpy as np

    p = np.maximum(np.asarray(prices, dtype=np.float64), FLOOR)
    x = np.column_stack([p, p.min(axis=1), p.max(axis=1)])
    return np.log(x) if form == "log" else x


@dataclass
class Blend:
    form: str
    intercept: float
    weights: list[float]  # one per member, then min, then max

    def predict(self, prices: Sequence[Sequence[float]]) -> list[float]:
        import numpy as np

        y = features(prices, self.form) @ np.asarray(self.weights) + self.intercept
        out = np.exp(y) if self.form == "log" else np.maximum(y, 0.0)
        return [float(v) for v in out]

    def named(self, members: Sequence[str]) -> dict[str, float]:
        names = [*members, "min", "max"]
        return {"intercept": round(self.intercept, 6),
                **{n: round(w, 6) for n, w in zip(names, self.weights, strict=True)}}


def fit_form(prices: Sequence[Sequence[float]], truth: Sequence[float], form: str) -> Blend:
    """Non-negative weights, free intercept: NNLS on centred features."""
    import numpy as np
    from scipy.optimize import nnls

    if form not in FORMS:
        raise ValueError(f"blend must be one of {', '.join(FORMS)} or auto, not {form!r}")
    x = features(prices, form)
    t = np.maximum(np.asarray(truth, dtype=np.float64), FLOOR)
    y = np.log(t) if form == "log" else t
    mx, my = x.mean(axis=0), y.mean()
    weights, _ = nnls(x - mx, y - my)
    return Blend(form, float(my - mx @ weights), [float(w) for w in weights])


def cv_mae(prices: Sequence[Sequence[float]], truth: Sequence[float], form: str,
           folds: int = 5, seed: int = 42) -> float:
    """Mean absolute error in dollars of ``form`` fitted on k-1 folds of the rows."""
    order = list(range(len(truth)))
    random.Random(seed).shuffle(order)
    errors: list[float] = []
    for f in range(folds):
        held = set(order[f::folds])
        fit_rows = [i for i in order if i not in held]
        test_rows = sorted(held)
        blend = fit_form([prices[i] for i in fit_rows], [truth[i] for i in fit_rows], form)
        guesses = blend.predict([prices[i] for i in test_rows])
        errors += [abs(g - truth[i]) for g, i in zip(guesses, test_rows, strict=True)]
    return sum(errors) / len(errors)


def fit(prices: Sequence[Sequence[float]], truth: Sequence[float],
        form: str = "auto", seed: int = 42) -> tuple[Blend, dict[str, float]]:
    """The blend on all rows, and each tried form's cross-validated MAE."""
    if len(truth) < 10:
        raise ValueError(f"need at least 10 validation rows with every member's answer, "
                         f"got {len(truth)}")
    tried = FORMS if form == "auto" else (form,)
    scores = {f: cv_mae(prices, truth, f, seed=seed) for f in tried}
    best = min(tried, key=lambda f: (scores[f], f))
    blend = fit_form(prices, truth, best)
    return blend, {f: round(v, 4) for f, v in scores.items() if math.isfinite(v)}
