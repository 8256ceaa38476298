"""``ensemble``: stacking of member predictors (out-of-fold predictions over the
training pool, a blend chosen by cross-validation on them, members refitted on
all rows). Importing this package registers it without loading numpy or scipy
(the blend imports them when fitted)."""

from predictors.ensemble import predictor  # noqa: F401  (registers)
