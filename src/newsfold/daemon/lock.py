"""The SQLite single-daemon lock: ``<database>.daemon.lock`` beside the database file.

SQLite has one writer, so a second daemon on the same file refuses to start. The
lock is an ``flock`` on that file, which the kernel drops when its holder dies:
a file left behind by a killed daemon never blocks the next one. A clean stop
removes the file. Removal races with a daemon that opened the file just before
it went: that one would lock an unlinked file while a third locks a new one.
So a daemon that got the lock checks that the path still names the file it
locked, and tries again if not (the usual lock-file protocol).

While held, the file says which worker holds it (``daemon.owners``), for people.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import TYPE_CHECKING, TextIO

from newsfold.config import sqlite_path
from newsfold.errors import StorageError
from newsfold.storage import check_sqlite_location

if TYPE_CHECKING:
    from pathlib import Path

_ATTEMPTS = 10  # each retry means another daemon removed the file meanwhile


class DaemonLock:
    """Held from ``acquire`` until ``release``; ``release`` removes the file."""

    def __init__(self, path: Path, handle: TextIO) -> None:
        self.path = path
        self._handle: TextIO | None = handle

    @classmethod
    def acquire(cls, database_url: str, *, holder: str) -> DaemonLock | None:
        """The lock of a SQLite database; ``None`` for other databases and memory ones."""
        db = sqlite_path(database_url)
        if db is None:
            return None
        check_sqlite_location(database_url)  # one clear line for a missing directory
        path = db.parent / (db.name + ".daemon.lock")
        for _ in range(_ATTEMPTS):
            try:
                handle = path.open("a+", encoding="utf-8")
            except OSError as e:
                raise StorageError(f"cannot open the daemon lock {path}: {e.strerror or e}") from e
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as e:
                handle.close()
                raise StorageError(
                    f"another newsfold daemon is already running on {db}; SQLite allows one "
                    "writer (use PostgreSQL to run several workers)"
                ) from e
            if _same_file(handle, path):
                handle.seek(0)
                handle.truncate()
                handle.write(f"{holder}\n")
                handle.flush()
                return cls(path, handle)
            handle.close()  # removed by a daemon that was stopping: lock the new file
        raise StorageError(f"cannot take the daemon lock {path}: it keeps being replaced")

    def release(self) -> None:
        """Remove the file, then unlock: a daemon waiting on the old file sees it gone."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        with contextlib.suppress(OSError):  # a lock left behind never blocks the next start
            if _same_file(handle, self.path):
                self.path.unlink()
        handle.close()


def _same_file(handle: TextIO, path: Path) -> bool:
    try:
        held, named = os.fstat(handle.fileno()), path.stat()
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


__all__ = ["DaemonLock"]
