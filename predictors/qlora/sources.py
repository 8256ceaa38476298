"""Where a model or adapter comes from, and whether it can be had here.

A reference is a local directory, a local GGUF file (a base model only; see
``gguf.py``) or a Hugging Face hub id (with a revision).
These checks are cheap and torch-free: ``bench list`` runs them. They look at
the local directory or the hub's local cache, and only when the files are not
there do they ask whether the hub can be reached at all (one short socket
connect, remembered for the process).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from bench.hub import hub_reachable

# Organisations whose models need an accepted licence and a token to download.
GATED_PREFIXES = ("meta-llama/",)
MODEL_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
MODEL_FILES = ("model.safetensors", "pytorch_model.bin")
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")
# A regression head saved beside an adapter (head.py): part of its identity.
HEAD_FILES = ("price_head.safetensors", "price_head.json")


@dataclass(frozen=True)
class Source:
    """A model reference: ``local`` is set for a directory on disk."""

    ref: str
    revision: str | None = None
    local: Path | None = None

    @classmethod
    def parse(cls, ref: str | Path, revision: str | None = None) -> Source:
        text = str(ref)
        path = Path(text).expanduser()
        looks_local = text.startswith(("/", "./", "../", "~")) or text.count("/") > 1 \
            or text.lower().endswith(".gguf")
        if path.exists() or looks_local:
            return cls(str(path), None, path)
        return cls(text, revision, None)

    @property
    def is_gguf(self) -> bool:
        return self.local is not None and self.local.suffix.lower() == ".gguf"

    @property
    def label(self) -> str:
        return str(self.local) if self.local else self.ref

    def file(self, name: str) -> Path | None:
        """A file of this source if it is on disk (locally or in the hub cache)."""
        if self.is_gguf:
            return None
        if self.local is not None:
            candidate = self.local / name
            return candidate if candidate.is_file() else None
        return _cached(self.ref, name, self.revision)


def hf_token() -> str | None:
    """HF_TOKEN, or the token saved by ``hf auth login``: the one place every
    loader (tokenizer, model, adapter, upload) gets its token from."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token
    try:
        from huggingface_hub import get_token
    except ImportError:  # pragma: no cover - a core dependency
        return None
    return get_token()


def _cached(repo: str, name: str, revision: str | None) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a core dependency
        return None
    try:
        found = try_to_load_from_cache(repo, name, revision=revision)
    except Exception:  # malformed id or revision: treat as not cached
        return None
    return Path(found) if isinstance(found, str) else None


def weights_present(src: Source, kind: str) -> bool:
    """Are all weight files of a model (``kind="model"``) or adapter on disk?"""
    if kind == "adapter":
        return src.file("adapter_config.json") is not None and any(
            src.file(n) is not None for n in ADAPTER_FILES)
    if src.file("config.json") is None:
        return False
    if src.local is not None:
        return any(src.local.glob("*.safetensors")) or any(src.local.glob("*.bin"))
    for index_name in MODEL_INDEXES:
        index = src.file(index_name)
        if index is not None:
            try:
                shards = set(json.loads(index.read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError):
                return False
            return all(src.file(s) is not None for s in shards)
    return any(src.file(n) is not None for n in MODEL_FILES)


def hub_kwargs(src: Source) -> dict[str, object]:
    """What every ``from_pretrained`` of a hub source is given: its revision, the
    token, and ``local_files_only`` when the hub is off (``HF_HUB_OFFLINE``) or
    unreachable, so weights already in the cache load without the network."""
    if src.local is not None:
        return {}
    return {"revision": src.revision, "token": hf_token(),
            "local_files_only": not hub_reachable()}


def problems(src: Source, kind: str) -> list[str]:
    """What stops loading ``src`` here (empty when nothing does)."""
    what = "adapter" if kind == "adapter" else "model"
    if src.is_gguf:
        assert src.local is not None
        if kind == "adapter":
            return [f"adapter {src.local} is a GGUF file: adapters are peft directories"]
        if not src.local.is_file():
            return [f"model file {src.local} does not exist"]
        if importlib.util.find_spec("gguf") is None:
            return [f"{src.local.name} is a GGUF file: reading it needs `pip install gguf`"]
        return []
    if src.local is not None:
        if not src.local.is_dir():
            return [f"{what} directory {src.local} does not exist"]
        if not weights_present(src, kind):
            need = "adapter_config.json and adapter weights" if kind == "adapter" \
                else "config.json and weights"
            return [f"{what} directory {src.local} lacks {need}"]
        return []
    if weights_present(src, kind):
        return []
    at = f"@{src.revision[:12]}" if src.revision else ""
    if not hub_reachable():
        return [f"{what} {src.ref}{at} is not downloaded (not in the Hugging Face cache) and "
                "the hub is unreachable"]
    if src.ref.startswith(GATED_PREFIXES) and not hf_token():
        return [f"{what} {src.ref} is gated: accept its licence on huggingface.co and set "
                "HF_TOKEN (or run `hf auth login`)"]
    return []


def content_digest(src: Source, kind: str) -> str | None:
    """For a local directory, a short hash identifying its contents: the full
    adapter weights (small), or a model's config plus its weight file names and
    sizes (hashing 16 GB would not be cheap). None for hub sources: the id and
    revision identify those."""
    if src.is_gguf and src.local is not None and src.local.is_file():
        stat = src.local.stat()
        return hashlib.sha256(f"{src.local.name}:{stat.st_size}".encode()).hexdigest()[:16]
    if src.local is None or not src.local.is_dir():
        return None
    digest = hashlib.sha256()
    if kind == "adapter":
        names = ["adapter_config.json", *ADAPTER_FILES, *HEAD_FILES]
        for name in names:
            path = src.local / name
            if path.is_file():
                digest.update(name.encode())
                digest.update(path.read_bytes())
    else:
        config = src.local / "config.json"
        if config.is_file():
            digest.update(config.read_bytes())
        for path in sorted(src.local.glob("*.safetensors")) + sorted(src.local.glob("*.bin")):
            digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:16]
