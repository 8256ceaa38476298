"""One canonical-JSON digest: the sha256 of a value written as sorted, compact JSON.

Cache keys, run-folder fingerprints and model keys all hash this way, so the
same parts always give the same key (and existing folder names and keys stay
valid). Values JSON cannot write are written as ``str(value)``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and no spaces: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any, length: int | None = None) -> str:
    """Hex sha256 of ``canonical_json(value)``, cut to ``length`` characters if given."""
    hexdigest = hashlib.sha256(canonical_json(value).encode()).hexdigest()
    return hexdigest if length is None else hexdigest[:length]


def file_sha256(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes, read in chunks (model files are large)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()
