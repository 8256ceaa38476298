"""The raw-response cache: never pay twice for the same model output.

Keyed by a hash of everything that shapes the output (predictor and version,
model, prompt template, the item's content, output-affecting parameters),
never timeouts, concurrency or keys. Shared across runs; errors are never
stored. One SQLite file, safe to use from the runner's threads.

A damaged cache (a truncated or corrupted file, a folder where the file should
be) never stops a run: the first failure prints one warning naming the file and
the run goes on without the cache (every response is asked for again, nothing
is stored). ``bench cache info`` says it in one line (exit 2), and ``bench
cache clear`` removes the damaged file, whatever it holds.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench.digest import digest
from bench.errors import BenchError

T = TypeVar("T")
# What SQLite says of a file that is not a usable database (sqlite3.DatabaseError
# covers "file is not a database", "database disk image is malformed" and "unable
# to open database file"), plus the file system's own refusals.
DAMAGED = (sqlite3.DatabaseError, OSError)


def cache_key(parts: dict[str, Any]) -> str:
    return digest(parts)


class ResponseCache:
    """``get``/``put`` raw responses by key parts; ``path=None`` disables it."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.damaged: str | None = None  # why the cache is not used (said once)

    @property
    def enabled(self) -> bool:
        return self.path is not None and self.damaged is None

    def _guarded(self, work: Callable[[], T], fallback: T, warn: bool = True) -> T:
        """``work()`` under the lock; on a damaged cache, ``fallback`` from now on,
        with one warning naming the file (unless the caller says it itself)."""
        if not self.enabled:
            return fallback
        with self._lock:
            try:
                return work()
            except DAMAGED as exc:
                self._damage(exc, warn)
                return fallback

    def _damage(self, exc: BaseException, say: bool) -> None:
        self.damaged = str(exc) or type(exc).__name__
        self._close()
        if say:
            from bench.store import warn

            warn(str(self.path), f"damaged response cache ({self.damaged}); going on "
                 "without it (`bench cache clear` removes it)")

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL never corrupts the file and survives a killed
            # process; only a power cut can lose the latest entries (of a cache).
            # FULL would fsync on every put: ~7 ms each, serialised under the
            # lock, which capped the API runner's concurrency.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, "
                "namespace TEXT, value TEXT NOT NULL, created REAL NOT NULL)"
            )
        return self._db

    def get(self, parts: dict[str, Any]) -> Any | None:
        key = cache_key(parts) if self.enabled else ""
        row = self._guarded(lambda: self._conn().execute(
            "SELECT value FROM responses WHERE key = ?", (key,)).fetchone(), None)
        return None if row is None else json.loads(row[0])

    def holds(self, namespace: str) -> bool:
        """Is anything stored under ``namespace`` (a predictor's name)?"""
        if not self.enabled or not self.path or not self.path.exists():
            return False
        row = self._guarded(lambda: self._conn().execute(
            "SELECT 1 FROM responses WHERE namespace = ? LIMIT 1", (namespace,)).fetchone(),
            None)
        return row is not None

    def put(self, parts: dict[str, Any], value: Any) -> None:
        if not self.enabled:
            return
        namespace = str(parts.get("predictor", ""))
        row = (cache_key(parts), namespace, json.dumps(value), time.time())

        def store() -> None:
            db = self._conn()
            db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", row)
            db.commit()

        self._guarded(store, None)

    def info(self) -> dict[str, Any]:
        """Entries by predictor; BenchError (one line naming the file) when damaged."""
        if self.path is None or not self.path.exists() and not self.path.is_symlink():
            return {"path": str(self.path), "entries": 0, "bytes": 0, "by_predictor": {}}
        rows = self._guarded(lambda: self._conn().execute(
            "SELECT namespace, COUNT(*) FROM responses GROUP BY namespace").fetchall(), [],
            warn=False)
        if self.damaged is not None:
            raise BenchError(f"damaged response cache ({self.damaged}); `bench cache clear` "
                             "removes it", self.path)
        return {
            "path": str(self.path),
            "entries": sum(n for _, n in rows),
            "bytes": self.path.stat().st_size,
            "by_predictor": dict(rows),
        }

    def clear(self, predictor: str | None = None) -> int:
        """Remove the cached responses (of ``predictor``): their count. A damaged cache
        is removed whole (the file, or what stands in its place): -1."""
        if self.path is None or not self.path.exists() and not self.path.is_symlink():
            return 0

        def delete() -> int:
            db = self._conn()
            if predictor:
                cur = db.execute("DELETE FROM responses WHERE namespace = ?", (predictor,))
            else:
                cur = db.execute("DELETE FROM responses")
            db.commit()
            db.execute("VACUUM")
            return cur.rowcount

        removed = self._guarded(delete, -1, warn=False)
        if self.damaged is None:
            return removed
        with self._lock:
            self._close()
            for part in (self.path, *(self.path.with_name(self.path.name + s)
                                      for s in ("-wal", "-shm", "-journal"))):
                if part.is_dir() and not part.is_symlink():
                    shutil.rmtree(part)
                else:
                    part.unlink(missing_ok=True)
        return -1

    def _close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    def close(self) -> None:
        with self._lock:
            self._close()
