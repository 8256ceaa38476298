"""Can this machine reach the Hugging Face hub? One short socket connect,
remembered for the process; ``HF_HUB_OFFLINE`` says no without asking and
``HF_ENDPOINT`` names another hub. Used to choose between loading from the
local cache and downloading (models, adapters, embedding models)."""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse


def hub_reachable() -> bool:
    """Can this machine open a connection to the hub? (HF_HUB_OFFLINE says no.)"""
    return unreachable() is None


def unreachable() -> str | None:
    """Why the hub cannot be reached, in a few words (None: it can)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    if _can_connect(host, port):
        return None
    cause = _connect_error(host, port)
    return f"the Hugging Face hub ({host}:{port}) cannot be reached" + (
        f" ({cause})" if cause else "")


def _can_connect(host: str, port: int) -> bool:
    return _connect_error(host, port) is None


@functools.cache
def _connect_error(host: str, port: int) -> str | None:
    """Why a connection cannot be opened ("ConnectionRefusedError: ..."), or None."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
