"""Keep credentials out of anything written: error strings, fingerprints, cache keys."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Key-shaped tokens, whoever's key they are: OpenAI/Anthropic "sk-..." keys,
# bearer tokens, and "api_key=..." / "x-api-key: ..." pairs.
_PATTERNS = (
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"),
    re.compile(r"(?i)((?:x-)?api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
)


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given secrets and anything key-shaped masked."""
    for secret in secrets:
        if secret and len(secret) >= 6:  # "EMPTY" placeholders are not secrets
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


_SECRET_NAME = re.compile(r"(?i)(key|token|secret|password)")


def public_params(params: dict[str, str]) -> dict[str, str]:
    """``--param`` values as they may be recorded in run.json."""
    out = {}
    for name, value in params.items():
        if _SECRET_NAME.search(name):
            out[name] = MASK
        elif "://" in value:
            out[name] = public_url(value)
        else:
            out[name] = scrub(value)
    return out


def public_url(url: str) -> str:
    """A base URL as it may be recorded: no user:password@, query or fragment,
    no trailing slash (so equal servers give equal cache keys)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
