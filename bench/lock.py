"""One writer per run directory: an advisory lock that a killed process never leaves behind.

``RunLock(directory)`` takes ``fcntl.flock`` on ``<directory>/.lock``. The
kernel drops the lock when the holding process ends, however it ends (a
SIGKILL included), so a stale file never blocks the next run; the holder's pid,
host, command and start time are written into the file so that a second
process can say who holds it. The file is removed on release (re-checked by
inode, so a waiter never ends up holding a deleted file). On platforms
without ``fcntl`` the lock is a no-op.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import provenance
from bench.errors import BenchError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class RunLocked(BenchError):
    """Another process is writing this run directory."""


@dataclass(frozen=True)
class Holder:
    pid: int | None
    host: str | None
    command: str | None
    since: str | None

    def describe(self) -> str:
        where = f"pid {self.pid}" if self.pid else "another process"
        if self.host and self.host != socket.gethostname():
            where += f" on {self.host}"
        parts = [where]
        if self.command:
            parts.append(f"`{self.command}`")
        if self.since:
            parts.append(f"since {self.since}")
        return ", ".join(parts)


def holder(directory: Path) -> Holder | None:
    """Who holds ``directory``'s lock now, or None when nobody does (a
    ``run.json`` saying ``running`` with no holder belongs to a killed run)."""
    path = directory / LOCK_FILE
    if fcntl is None or not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(fd: int) -> Holder:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data: Any = json.loads(os.read(fd, 65536).decode("utf-8") or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid = data.get("pid")
    return Holder(pid if isinstance(pid, int) else None, data.get("host"),
                  data.get("command"), data.get("since"))


class RunLock:
    """``with RunLock(dir):`` hold the directory's lock, or raise ``RunLocked``
    at once naming the holder."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            # never through a link: a lock file that links to a user's file is refused
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                         0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                who = _read_holder(fd)
                os.close(fd)
                raise RunLocked(f"another bench run is writing {self.directory} "
                                f"({who.describe()}); wait for it to finish or stop it") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file its last holder removed meanwhile
                break
            os.close(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "command": " ".join(["bench", *sys.argv[1:]])[:300], "since": provenance.now()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode("utf-8"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the lock
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
