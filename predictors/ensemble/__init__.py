"""``ensemble``: a learned blend of member predictors, fitted on a validation
slice held out of the training rows. Importing this package registers it
without loading numpy or scipy (the blend imports them when fitted)."""

from predictors.ensemble import predictor  # noqa: F401  (registers)
