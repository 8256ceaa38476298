"""The code digest of a member's saved models: its own module, the featuriser it
shares with the classic models (``predictors/classic/features.py``) and this file."""

from __future__ import annotations

import hashlib
from pathlib import Path

FEATURES = Path(__file__).resolve().parents[1] / "classic" / "features.py"


def code_digest(module_file: str) -> str:
    """16 hex digits over ``module_file``, the featuriser and this file: a change to
    any of them keys new models."""
    digest = hashlib.sha256()
    for path in (Path(module_file), FEATURES, Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
