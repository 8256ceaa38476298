"""Sentence embeddings of product texts, computed once and kept on disk.

``Embedder`` wraps a sentence-transformers model (a hub name, cached by the
hub client, or a local folder) and a per-model SQLite store of vectors keyed
by the sha256 of each document's text. Any set of rows (the training pool, a
subset, the test items) is embedded at most once per model: a later run reads
the vectors back, and loads no model at all when every text is stored.
Vectors are L2-normalised float32, so a dot product is the cosine similarity.

The document for a product is its ``description`` (title line plus body, no
question, no price), as in the course's vector store.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.store import slug
from bench.types import Product

HUB_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# A hub id or a local sentence-transformers folder (offline machines, CI).
MODEL_ENV = "BENCH_EMBEDDING_MODEL"


def default_model() -> str:
    return os.environ.get(MODEL_ENV) or HUB_MODEL
ENCODE_BATCH = 64
COMMIT_EVERY = 256  # rows per transaction: a killed run keeps what it embedded
_folder_digests: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
_digest_lock = threading.Lock()


def document(product: Product) -> str:
    """What is embedded for a product: its description, never its price."""
    return product.description


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def missing_library() -> str | None:
    if importlib.util.find_spec("sentence_transformers") is None:
        return "needs sentence-transformers: pip install 'pricer-bench[retrieval]'"
    return None


def model_problem(model: str | None = None) -> str | None:
    """Why the embedding model cannot be loaded here (None when it can): the
    library, a folder that is not a model, or a hub model neither downloaded
    nor downloadable."""
    reason = missing_library()
    if reason:
        return reason
    model = model or default_model()
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            return f"{path} is not a sentence-transformers model folder"
        return None
    if model.startswith(("/", ".", "~")) or model.count("/") > 1:
        return f"embedding model folder {model} does not exist"
    from huggingface_hub import try_to_load_from_cache

    try:
        if isinstance(try_to_load_from_cache(model, "modules.json"), str):
            return None
    except Exception:  # a malformed id: let loading say what is wrong
        return None
    from predictors.qlora.sources import hub_reachable

    if hub_reachable():
        return None
    return (f"the embedding model {model} is not downloaded and the hub cannot be reached: "
            f"pass --param embedding_model=FOLDER or set {MODEL_ENV}")


def model_identity(model: str) -> str:
    """What names a model's vectors: the hub id, or a local folder's content digest
    (so a moved or renamed copy of the same weights shares its stored vectors)."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return model
    files = sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
    stat = tuple((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns)
                 for p in files)
    memo = (str(path.resolve()), stat)
    with _digest_lock:
        if memo in _folder_digests:
            return _folder_digests[memo]
    digest = hashlib.sha256()
    for p in files:
        if p.name == "README.md":  # documentation does not shape a vector
            continue
        digest.update(str(p.relative_to(path)).encode() + b"\0")
        with p.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    identity = f"local:sha256:{digest.hexdigest()[:32]}"
    with _digest_lock:
        _folder_digests[memo] = identity
    return identity


class VectorStore:
    """One SQLite file per model: ``text sha256 -> float32 vector``."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors "
                             "(key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        return self._db

    def get(self, keys: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        with self._lock:
            db = self._conn()
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                out.update(db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})",
                                      chunk).fetchall())
        return out

    def put(self, items: Sequence[tuple[str, bytes]]) -> None:
        with self._lock:
            db = self._conn()
            db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", items)
            db.commit()

    def count(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class Embedder:
    """Embeds texts with one sentence-transformers model, through the vector store."""

    def __init__(self, model: str | None = None, cache_dir: Path | None = None,
                 batch_size: int = ENCODE_BATCH, progress: bool = True):
        self.model = model or default_model()
        self.identity = model_identity(self.model)
        self.batch_size = batch_size
        self.progress = progress
        self.cache_dir = cache_dir
        name = f"{slug(self.identity)[:48]}-{text_key(self.identity)[:10]}.sqlite"
        self.store = VectorStore(cache_dir / "embeddings" / name) if cache_dir else None
        self._model: Any = None
        self._lock = threading.Lock()
        self.encoded = 0  # texts this process had to embed (not found stored)

    def _load(self) -> Any:
        if self._model is None:
            reason = missing_library()
            if reason:
                raise BenchError(reason)
            from sentence_transformers import SentenceTransformer

            try:
                self._model = SentenceTransformer(self.model)
            except Exception as exc:
                raise BenchError(
                    f"cannot load the embedding model {self.model!r} ({type(exc).__name__}: "
                    f"{str(exc)[:200]}); offline, pass --param embedding_model=FOLDER "
                    "(a sentence-transformers folder)") from None
        return self._model

    def dimension(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def embed(self, texts: Sequence[str], desc: str = "embedding") -> Any:
        """``(len(texts), dim)`` normalised float32 vectors, stored ones read back."""
        import numpy as np

        keys = [text_key(t) for t in texts]
        found = self.store.get(sorted(set(keys))) if self.store is not None else {}
        todo: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found:
                todo.setdefault(key, text)
        if todo:
            found.update(self._encode(list(todo.items()), desc))
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([np.frombuffer(found[k], dtype=np.float32) for k in keys])

    def _encode(self, items: list[tuple[str, str]], desc: str) -> dict[str, bytes]:
        import numpy as np

        bar = None
        if self.progress and len(items) > self.batch_size:
            from tqdm import tqdm

            bar = tqdm(total=len(items), desc=f"{desc} ({self.model})", unit="row",
                       file=sys.stderr, disable=None, leave=False)
        out: dict[str, bytes] = {}
        try:
            with self._lock:
                model = self._load()
                for start in range(0, len(items), COMMIT_EVERY):
                    chunk = items[start : start + COMMIT_EVERY]
                    vectors = model.encode([t for _, t in chunk], batch_size=self.batch_size,
                                           normalize_embeddings=True, show_progress_bar=False,
                                           convert_to_numpy=True)
                    rows = [(k, np.asarray(v, dtype=np.float32).tobytes())
                            for (k, _), v in zip(chunk, vectors, strict=True)]
                    if self.store is not None:
                        self.store.put(rows)
                    out.update(rows)
                    self.encoded += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        return out

    def describe(self) -> dict[str, Any]:
        return {"model": self.model if self.identity == self.model else "local folder",
                "identity": self.identity}


def fingerprint_rows(texts: Sequence[str], prices: Sequence[float]) -> str:
    """A digest of the indexed documents and their prices, in order."""
    digest = hashlib.sha256()
    for text, price in zip(texts, prices, strict=True):
        digest.update(json.dumps([text, round(float(price), 2)]).encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()
