"""Predictors that bring the ensemble what the trees lack, each a predictor on its own:
``mlp`` (a small neural network on hashed text features) and ``embedding-ridge``
(a ridge regression on sentence embeddings and TF-IDF features).

Importing this package registers them without loading numpy, scikit-learn or
sentence-transformers: those load when a model is fitted or loaded.
"""

from predictors.members import mlp, vectors  # noqa: F401  (registers)
