"""The ensemble's blend of its members' out-of-fold guesses, and how its form is chosen.

Forms (``FORMS``):

- ``log`` / ``log-0``: non-negative least squares on log prices over each
  member's guess, their min and their max, with (``log``) or without
  (``log-0``) a free intercept;
- ``dollars`` / ``dollars-0``: the same in dollars;
- ``gbm``: a small meta-model, gradient-boosted trees (scikit-learn's
  HistGradientBoostingRegressor, depth 3) on the members' log guesses, their
  min, max and spread, predicting the log price.

Non-negative weights cannot cancel each other, so correlated members do not
swing to large weights of opposite signs. ``auto`` picks the form with the lowest
mean absolute error in dollars, cross-validated over the out-of-fold rows with
the ensemble's own folds (a form is fitted on K-1 folds, scored on the K-th):
chosen on training rows only, never on the items scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

FORMS = ("log", "log-0", "dollars", "dollars-0", "gbm")
FLOOR = 0.01  # prices below a cent are treated as a cent before taking logs
MIN_ROWS = 10


def features(prices: Sequence[Sequence[float]], form: str) -> Any:
    """Per row: each member's guess, their min and their max, on the form's scale
    (``gbm`` adds the spread of the log guesses)."""
    import numpy as np

    p = np.maximum(np.asarray(prices, dtype=np.float64), FLOOR)
    x = np.column_stack([p, p.min(axis=1), p.max(axis=1)])
    if form == "gbm":
        logs = np.log(p)
        return np.column_stack([np.log(x), logs.std(axis=1)])
    return x if form.startswith("dollars") else np.log(x)


@dataclass
class Blend:
    form: str
    intercept: float = 0.0
    weights: list[float] = field(default_factory=list)  # per member, then min, then max
    model: Any = None  # the meta-model of ``gbm``

    def predict(self, prices: Sequence[Sequence[float]]) -> list[float]:
        import numpy as np

        x = features(prices, self.form)
        if self.form == "gbm":
            y = self.model.predict(x)
        else:
            y = x @ np.asarray(self.weights) + self.intercept
        out = np.maximum(y, 0.0) if self.form.startswith("dollars") else np.exp(y)
        return [float(v) for v in out]

    def named(self, members: Sequence[str]) -> dict[str, float | str]:
        if self.form == "gbm":
            return {"meta-model": "HistGradientBoostingRegressor(max_depth=3, "
                                  "max_iter=200, learning_rate=0.05) on log guesses"}
        names = [*members, "min", "max"]
        return {"intercept": round(self.intercept, 6),
                **{n: round(w, 6) for n, w in zip(names, self.weights, strict=True)}}


def fit_form(prices: Sequence[Sequence[float]], truth: Sequence[float], form: str,
             seed: int = 42) -> Blend:
    """One form fitted on these rows."""
    import numpy as np

    if form not in FORMS:
        raise ValueError(f"blend must be one of {', '.join(FORMS)} or auto, not {form!r}")
    x = features(prices, form)
    t = np.maximum(np.asarray(truth, dtype=np.float64), FLOOR)
    y = t if form.startswith("dollars") else np.log(t)
    if form == "gbm":
        from sklearn.ensemble import HistGradientBoostingRegressor

        model = HistGradientBoostingRegressor(max_depth=3, max_iter=200, learning_rate=0.05,
                                              min_samples_leaf=40, random_state=seed,
                                              early_stopping=False)
        return Blend(form, model=model.fit(x, y))
    from scipy.optimize import nnls

    if form.endswith("-0"):
        weights, _ = nnls(x, y)
        return Blend(form, 0.0, [float(w) for w in weights])
    mx, my = x.mean(axis=0), y.mean()
    weights, _ = nnls(x - mx, y - my)
    return Blend(form, float(my - mx @ weights), [float(w) for w in weights])


def cv_predictions(prices: Sequence[Sequence[float]], truth: Sequence[float], form: str,
                   fold_ids: Sequence[int], seed: int = 42) -> list[float]:
    """Each row's guess from ``form`` fitted on the rows of the other folds."""
    out = [math.nan] * len(truth)
    for f in sorted(set(fold_ids)):
        fit_rows = [i for i, g in enumerate(fold_ids) if g != f]
        held = [i for i, g in enumerate(fold_ids) if g == f]
        blend = fit_form([prices[i] for i in fit_rows], [truth[i] for i in fit_rows], form, seed)
        for i, guess in zip(held, blend.predict([prices[i] for i in held]), strict=True):
            out[i] = guess
    return out


def cv_mae(prices: Sequence[Sequence[float]], truth: Sequence[float], form: str,
           fold_ids: Sequence[int], seed: int = 42) -> float:
    """Mean absolute error in dollars of ``form`` fitted on the other folds' rows."""
    guesses = cv_predictions(prices, truth, form, fold_ids, seed)
    return sum(abs(g - t) for g, t in zip(guesses, truth, strict=True)) / len(truth)


def fit(prices: Sequence[Sequence[float]], truth: Sequence[float], fold_ids: Sequence[int],
        form: str = "auto", seed: int = 42) -> tuple[Blend, dict[str, float]]:
    """The chosen form fitted on all rows, and every tried form's cross-validated MAE."""
    if len(truth) < MIN_ROWS:
        raise ValueError(f"need at least {MIN_ROWS} out-of-fold rows with every member's "
                         f"answer, got {len(truth)}")
    if len(set(fold_ids)) < 2:
        raise ValueError("the out-of-fold rows with every member's answer lie in one fold: "
                         "cannot cross-validate the blend")
    tried = FORMS if form == "auto" else (form,)
    scores = {f: cv_mae(prices, truth, f, fold_ids, seed) for f in tried}
    best = min(tried, key=lambda f: (scores[f], FORMS.index(f)))
    blend = fit_form(prices, truth, best, seed)
    return blend, {f: round(v, 4) for f, v in scores.items() if math.isfinite(v)}
