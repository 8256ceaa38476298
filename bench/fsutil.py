"""Small file helpers: atomic writes, so a crash never leaves half a file, and
checked reads of user files, so a wrong file is one clear line."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.errors import BenchError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically; False (nothing written, the file and its
    time untouched) when the file already holds exactly that text."""
    try:
        if path.read_bytes() == text.encode("utf-8"):
            return False
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; published files are readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def atomic_write_json(path: Path, obj: Any) -> bool:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str)
                             + "\n")


def writable_folder(path: Path, what: str = "results dir") -> None:
    """BenchError (one line naming ``path``) unless ``path`` is, or can become, a
    folder this process may write into."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "" if probe == path else f" ({probe} is a file)"
        raise BenchError(f"{what} is not a folder{where}", path)
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise BenchError(f"{what} is read-only (pass --results-dir to write elsewhere)", probe)


def folder(path: Path, what: str = "results dir") -> None:
    """BenchError unless ``path`` is missing or a folder (for commands that only read)."""
    if path.exists() and not path.is_dir():
        raise BenchError(f"{what} is not a folder", path)


UTF8_BOM = b"\xef\xbb\xbf"


def read_input(path: Path, kind: str) -> bytes:
    """The bytes of a user's ``kind`` file ("JSONL", "CSV"), less a leading UTF-8
    byte-order mark (editors on Windows add one; it is no part of the content):
    missing, a folder, UTF-16 or binary data is a BenchError naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BenchError("file not found", path) from None
    except IsADirectoryError:
        raise BenchError(f"is a directory, expected a {kind} file", path) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BenchError(f"UTF-16 text, expected a UTF-8 {kind} file (save it as UTF-8)", path)
    if b"\x00" in raw[:4096]:
        raise BenchError(f"binary data, expected a {kind} text file", path)
    return raw.removeprefix(UTF8_BOM)
