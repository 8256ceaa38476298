"""Retrieval predictors: ``knn`` (nearest training products) and ``rag[:MODEL]``
(a chat model shown the most similar training products and their prices).

Importing this package registers them without loading sentence-transformers,
torch or numpy: those load when an index is built or searched.
"""

from predictors.retrieval import knn, rag  # noqa: F401  (registers)
