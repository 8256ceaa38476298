"""Classic machine-learning baselines: constant, linear, random-forest, xgboost.

Importing this package registers them without loading scikit-learn or xgboost.
"""

from predictors.classic import baselines

__all__ = ["baselines"]
