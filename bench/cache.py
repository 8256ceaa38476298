"""The raw-response cache: never pay twice for the same model output.

Keyed by a hash of everything that shapes the output (predictor and version,
model, prompt template, the item's content, output-affecting parameters),
never timeouts, concurrency or keys. Shared across runs; errors are never
stored. One SQLite file, safe to use from the runner's threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from bench.digest import digest


def cache_key(parts: dict[str, Any]) -> str:
    return digest(parts)


class ResponseCache:
    """``get``/``put`` raw responses by key parts; ``path=None`` disables it."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @property
    def enabled(self) -> bool:
        return self.path is not None

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
        if not self.enabled:
            return None
        with self._lock:
            row = self._conn().execute(
                "SELECT value FROM responses WHERE key = ?", (cache_key(parts),)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def holds(self, namespace: str) -> bool:
        """Is anything stored under ``namespace`` (a predictor's name)?"""
        if not self.enabled or not self.path or not self.path.exists():
            return False
        with self._lock:
            row = self._conn().execute(
                "SELECT 1 FROM responses WHERE namespace = ? LIMIT 1", (namespace,)
            ).fetchone()
        return row is not None

    def put(self, parts: dict[str, Any], value: Any) -> None:
        if not self.enabled:
            return
        namespace = str(parts.get("predictor", ""))
        with self._lock:
            db = self._conn()
            db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                (cache_key(parts), namespace, json.dumps(value), time.time()),
            )
            db.commit()

    def info(self) -> dict[str, Any]:
        if not self.enabled or not self.path or not self.path.exists():
            return {"path": str(self.path), "entries": 0, "bytes": 0, "by_predictor": {}}
        with self._lock:
            rows = self._conn().execute(
                "SELECT namespace, COUNT(*) FROM responses GROUP BY namespace"
            ).fetchall()
        return {
            "path": str(self.path),
            "entries": sum(n for _, n in rows),
            "bytes": self.path.stat().st_size,
            "by_predictor": dict(rows),
        }

    def clear(self, predictor: str | None = None) -> int:
        if not self.enabled or not self.path or not self.path.exists():
            return 0
        with self._lock:
            db = self._conn()
            if predictor:
                cur = db.execute("DELETE FROM responses WHERE namespace = ?", (predictor,))
            else:
                cur = db.execute("DELETE FROM responses")
            db.commit()
            db.execute("VACUUM")
        return cur.rowcount

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
