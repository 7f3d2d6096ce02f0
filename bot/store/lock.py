"""One bot process per SQLite database: an exclusive lock on a file beside the database.

The lock is `flock(2)` on `<database>.lock`. The kernel drops it when the process ends, however
it ends (SIGKILL and OOM kills too), so a crash never leaves a stale lock behind; the file only
says who holds it, for the message a refused process prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self


class DatabaseInUse(Exception):
    """Another process holds the database; the message names it and what to do."""

    def __init__(self, database: Path, holder: str) -> None:
        super().__init__(
            f"the database {database} is in use by another bot process ({holder}). "
            "One process per SQLite database: a second one would resume and deliver the same "
            "jobs again. Stop the other process first (or give this one its own "
            "PIKABOT_DATABASE)."
        )
        self.database = database
        self.holder = holder


def lock_path(database: Path) -> Path:
    """The lock file of a database: beside it, so every process that can open it sees it."""
    return database.with_name(database.name + ".lock")


def holder_text(host: str, pid: int, since: datetime) -> str:
    """How a holder is named in the lock file and in the refusal."""
    return f"pid {pid} on host {host}, since {since.isoformat(timespec='seconds')}"


class DatabaseLock:
    """The exclusive right of this process to run jobs from one SQLite database.

    `DatabaseLock.acquire(path)` takes it or raises DatabaseInUse at once (it never waits);
    close it (or leave the `with` block) to give it back.
    """

    def __init__(self, database: Path, fd: int) -> None:
        self.database = database
        self.path = lock_path(database)
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database: Path) -> DatabaseLock:
        path = lock_path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd) or "a process that has not written its name yet"
            os.close(fd)
            raise DatabaseInUse(database, holder) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            text = holder_text(socket.gethostname(), os.getpid(), datetime.now(UTC))
            os.ftruncate(fd, 0)
            os.pwrite(fd, (text + "\n").encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(database, fd)

    def close(self) -> None:
        """Give the lock back (closing the file is what releases it); the file stays."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _read(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 1024, 0).decode("utf-8", "replace").strip()
    return ""
