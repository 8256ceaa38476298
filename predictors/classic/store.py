"""Fitted classic models on disk: keyed, signed, and only ever read back if untouched.

A model lives in ``<models_dir>/<predictor>/<key>/``, where the key hashes the
training data, the parameters and the library versions, so changing any of
them trains a new model instead of reusing a stale one. Files are in data
formats (JSON, ``.npz`` read with ``allow_pickle=False``, XGBoost's JSON):
nothing is ever unpickled. At save time the harness records each file's
sha256 in ``manifest.json`` and signs the manifest with an HMAC under a
per-user secret (``<models_dir>/.hmac-key``, created 0600); loading checks
the signature and every digest first and refuses a model that does not match.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.digest import canonical_json, digest
from bench.errors import BenchError
from bench.fsutil import atomic_write_text

MANIFEST = "manifest.json"
KEY_FILE = ".hmac-key"
FORMAT = 1


def cache_key(parts: Mapping[str, Any]) -> str:
    return digest(parts, 24)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ModelStore:
    """Signed model directories under ``root`` (the context's ``models_dir``)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, name: str, key: str) -> Path:
        return self.root / name / key

    def _secret(self) -> bytes:
        path = self.root / KEY_FILE
        try:
            return bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            pass
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".hmac-key.", dir=self.root)
        with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600
            handle.write(secrets.token_hex(32))
        try:  # first writer wins, so concurrent savers agree on one key
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return bytes.fromhex(path.read_text().strip())

    def _sign(self, body: Mapping[str, Any]) -> str:
        return hmac.new(self._secret(), canonical_json(body).encode(),
                        hashlib.sha256).hexdigest()

    def exists(self, name: str, key: str) -> bool:
        return (self.path(name, key) / MANIFEST).is_file()

    def save(self, name: str, key: str, info: Mapping[str, Any], staged: Path) -> Path:
        """Move the files written in ``staged`` into place with a signed manifest."""
        files = {p.name: _sha256(p) for p in sorted(staged.iterdir()) if p.is_file()}
        body = {"format": FORMAT, "predictor": name, "key": key, "info": dict(info),
                "files": files}
        atomic_write_text(staged / MANIFEST,
                          json.dumps({**body, "hmac": self._sign(body)}, indent=2) + "\n")
        target = self.path(name, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # a stale or half-written copy: replace it whole
            shutil.rmtree(target)
        os.replace(staged, target)
        return target

    def staging(self, name: str) -> Path:
        """A fresh directory beside the final one (same filesystem: the move is atomic)."""
        parent = self.root / name
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))

    def open(self, name: str, key: str) -> SavedModel:
        """The saved model, once its manifest's signature checks out."""
        directory = self.path(name, key)
        manifest_path = directory / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BenchError(f"unreadable model manifest ({exc}); delete {directory} "
                             "to retrain", manifest_path) from None
        claimed = manifest.pop("hmac", None) if isinstance(manifest, dict) else None
        if not isinstance(claimed, str) or not hmac.compare_digest(claimed, self._sign(manifest)):
            raise BenchError("model manifest is not signed by this harness (modified, or "
                             f"written elsewhere): refusing to load it; delete {directory} "
                             "to retrain", manifest_path)
        if manifest.get("key") != key or manifest.get("predictor") != name:
            raise BenchError("model manifest names another model: refusing to load it",
                             manifest_path)
        return SavedModel(directory, manifest["info"], manifest["files"])


class SavedModel:
    """A signed model directory; ``read`` returns a file's bytes only if they match
    the digest recorded at save time (hashing the very bytes it hands back, so a
    file swapped after the check cannot slip through)."""

    def __init__(self, directory: Path, info: dict[str, Any], files: dict[str, str]):
        self.directory = directory
        self.info = info
        self._files = files

    def read(self, filename: str) -> bytes:
        path = self.directory / filename
        expected = self._files.get(filename)
        if expected is None:
            raise BenchError("file is not part of the signed model", path)
        try:
            raw = path.read_bytes()
        except OSError:
            raise BenchError(f"model file is missing; delete {self.directory} to retrain",
                             path) from None
        if not hmac.compare_digest(hashlib.sha256(raw).hexdigest(), expected):
            raise BenchError("model file was modified after the harness saved it: refusing "
                             f"to load it; delete {self.directory} to retrain", path)
        return raw
