"""Small file helpers: atomic writes, so a crash never leaves half a file, and
checked reads of user files, so a wrong file is one clear line.

Every atomic write goes through ``atomic_write``: a temp file with a unique
name in the target's own folder, flushed, then renamed over the target, so two
writers of one file never share a temp file and a reader sees the old file or
the new one, never half of one. Given the folder the harness owns (``root``),
a write refuses, in one line, to go through a symbolic link anywhere between
that folder and the file: nothing is written or deleted outside it.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from bench.errors import BenchError


def umask() -> int:
    """The process's umask (read without changing it for good)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def no_links(root: Path, path: Path) -> None:
    """BenchError naming the link when ``path`` or a folder between ``root`` (itself
    not checked: the user chose it) and ``path`` is a symbolic link."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise BenchError(f"is outside {root}: refusing to write there", path) from None
    probe = root
    for part in parts:
        probe = probe / part
        try:
            mode = os.lstat(probe).st_mode
        except OSError:  # missing (so is all below it), or a name no file can have
            return
        if stat.S_ISLNK(mode):
            raise BenchError("is a symbolic link: refusing to write or delete through it "
                             "(remove the link, or point the command at the real folder)",
                             probe)


def atomic_write(path: Path, fill: Callable[[IO[bytes], str], object], *,
                 root: Path | None = None, mode: int | None = None) -> None:
    """Write ``path`` atomically: ``fill(handle, temp_name)`` writes the content into an
    open binary handle (its temp file's name for writers that want one), then the temp
    file, named uniquely in ``path``'s folder, replaces ``path``. ``mode``: the file's
    permission bits (default: readable by all, as the umask allows)."""
    if root is not None:
        no_links(root, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle, tmp)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes 0600; published files are readable
        os.chmod(tmp, 0o666 & ~umask() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes, *, root: Path | None = None) -> bool:
    """Write ``data`` to ``path`` atomically; False (nothing written, the file and its
    time untouched) when the file already holds exactly those bytes."""
    if root is not None:
        no_links(root, path)
    try:
        if stat.S_ISREG(os.lstat(path).st_mode) and path.read_bytes() == data:
            return False
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        pass
    atomic_write(path, lambda handle, _: handle.write(data), root=root)
    return True


def atomic_write_text(path: Path, text: str, *, root: Path | None = None) -> bool:
    """``atomic_write_bytes`` of ``text`` as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"), root=root)


def atomic_write_json(path: Path, obj: Any, *, root: Path | None = None) -> bool:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str)
                             + "\n", root=root)


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
