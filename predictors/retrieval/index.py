"""Exact cosine search over normalised vectors, and the persisted index of the
training products that ``knn`` and ``rag`` share.

Search is a brute-force matrix product in numpy (float32, BLAS) followed by a
partial sort: exact, dependency-free, and fast enough at this size (251
queries against 400k x 384 vectors, 600 MB, is one pass over the matrix; see
``python -m bench.perf.retrieval``). An approximate index (HNSW, IVF) would
trade exactness for speed that is not needed here.

``TrainingIndex`` persists the training rows' vector matrix as a signed model
directory (``ModelStore``: ``.npy`` read with ``allow_pickle=False``) keyed by
the embedding model and the rows' fingerprint, so it is rebuilt only when
either changes; its vectors come from the embedder's per-text store.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.types import Example
from predictors.classic.store import ModelStore, cache_key
from predictors.retrieval.embeddings import Embedder, document, fingerprint_rows

STORE_NAME = "embedding-index"
QUERY_CHUNK = 128  # queries per matrix product: bounds the score matrix's memory


class VectorIndex:
    """Exact top-k cosine search (vectors must be L2-normalised float32)."""

    def __init__(self, vectors: Any):
        import numpy as np

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be a matrix, not shape {vectors.shape}")
        self.vectors = vectors

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def search(self, queries: Any, k: int) -> tuple[Any, Any]:
        """``(similarities, row indices)``, each ``(len(queries), k)``, most similar
        first; ties broken by the lower row index, so results are deterministic."""
        import numpy as np

        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        n = len(self)
        k = min(k, n)
        sims = np.empty((len(queries), k), dtype=np.float32)
        rows = np.empty((len(queries), k), dtype=np.int64)
        if k == 0:
            return sims, rows
        for start in range(0, len(queries), QUERY_CHUNK):
            scores = queries[start : start + QUERY_CHUNK] @ self.vectors.T
            # The k-th largest score per query (a partial sort of the values),
            # then everything at or above it in an exact order.
            kth = np.partition(scores, n - k, axis=1)[:, n - k] if k < n else None
            for i, row in enumerate(scores):
                candidates = np.flatnonzero(row >= kth[i]) if kth is not None else np.arange(n)
                order = np.lexsort((candidates, -row[candidates]))[:k]
                rows[start + i] = candidates[order]
                sims[start + i] = row[candidates[order]]
        return sims, rows


@dataclass
class TrainingIndex:
    """The training products, their prices and their vectors, searchable."""

    examples: list[Example]
    index: VectorIndex
    embedder: Embedder
    rows_fingerprint: str
    build_s: float = 0.0
    loaded_from: Path | None = None
    reused: bool = False  # read back from the store, not built
    _by_text: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_text = {document(e.product): i for i, e in enumerate(self.examples)}

    @property
    def prices(self) -> list[float]:
        return [e.price for e in self.examples]

    def query_vectors(self, texts: Sequence[str]) -> Any:
        """Vectors of ``texts``: indexed rows reuse theirs, others are embedded."""
        import numpy as np

        known = [self._by_text.get(t) for t in texts]
        out = np.empty((len(texts), self.index.vectors.shape[1]), dtype=np.float32)
        new = [i for i, r in enumerate(known) if r is None]
        for i, r in enumerate(known):
            if r is not None:
                out[i] = self.index.vectors[r]
        if new:
            out[new] = self.embedder.embed([texts[i] for i in new], desc="embedding queries")
        return out

    def neighbours(self, texts: Sequence[str], k: int,
                   exclude_self: bool = False) -> list[list[tuple[int, float]]]:
        """The k most similar training rows of each text: ``(row, cosine)`` pairs.

        ``exclude_self`` drops a text's own row (leave-one-out on training rows).
        """
        extra = 1 if exclude_self else 0
        sims, rows = self.index.search(self.query_vectors(texts), k + extra)
        out = []
        for text, sim_row, idx_row in zip(texts, sims, rows, strict=True):
            own = self._by_text.get(text) if exclude_self else None
            pairs = [(int(r), float(s)) for r, s in zip(idx_row, sim_row, strict=True)
                     if r != own]
            out.append(pairs[:k])
        return out


def build_index(examples: Sequence[Example], embedder: Embedder,
                models_dir: Path | None) -> TrainingIndex:
    """The index of ``examples``: loaded if stored for this model and these rows,
    else built from the embedder (which embeds only texts it has not stored)."""
    import numpy as np

    examples = list(examples)
    if not examples:
        raise BenchError("no training rows to index")
    started = time.perf_counter()
    texts = [document(e.product) for e in examples]
    fp = fingerprint_rows(texts, [e.price for e in examples])
    parts = {"embedding": embedder.identity, "rows": fp, "count": len(texts)}
    key = cache_key(parts)
    store = ModelStore(models_dir) if models_dir is not None else None
    if store is not None and store.exists(STORE_NAME, key):
        saved = store.open(STORE_NAME, key)
        vectors = np.load(io.BytesIO(saved.read("vectors.npy")), allow_pickle=False)
        if vectors.shape[0] == len(texts):
            return TrainingIndex(examples, VectorIndex(vectors), embedder, fp,
                                 time.perf_counter() - started, saved.directory, reused=True)
    vectors = embedder.embed(texts, desc="embedding training rows")
    where = None
    if store is not None:
        staged = store.staging(STORE_NAME)
        np.save(staged / "vectors.npy", vectors, allow_pickle=False)
        where = store.save(STORE_NAME, key, parts, staged)
    return TrainingIndex(examples, VectorIndex(vectors), embedder, fp,
                         time.perf_counter() - started, where)
