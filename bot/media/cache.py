"""A content-addressed disk cache of members' input files, bounded in size and age."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Earlier versions kept each entry's content type in a `<sha>.type` file beside it; the request
# carries the type (InputRef), so none is written now and prune clears those left behind.
_LEGACY_TYPE_SUFFIX = ".type"
_TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True, slots=True)
class _Entry:
    sha: str
    size: int
    used_at: float


class InputCache:
    """Keeps input bytes under `root/<first two hex>/<sha256>` so jobs can reuse them later.

    Re-roll, Remix and Continue need a job's images long after Discord's signed links have
    expired. Each entry is its bytes alone: the request that names it carries its type. An
    entry's "used" time is its file's mtime, set from the injected clock by `put` and `get`;
    `prune` drops entries unused for `max_age_seconds`, then the least recently used until the
    cache holds at most `max_bytes`. Methods do blocking file I/O on small files; call them
    from a thread when the event loop must not wait on the disk.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int,
        max_age_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self._clock = clock

    def put(self, data: bytes) -> str:
        """Store `data` (idempotent) and return its sha256 hex, the key for everything else."""
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.stat().st_size != len(data):
            _write_atomic(target, data)
        self._touch(target)
        return sha

    def get(self, sha: str) -> bytes | None:
        """Return the bytes stored under `sha` and mark them used; None if absent or not a key."""
        target = self._existing(sha)
        if target is None:
            return None
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            # Pruned by another worker between the check and the read.
            return None
        self._touch(target)
        return data

    def path(self, sha: str) -> Path:
        """Where `sha`'s bytes live (whether or not they are stored). Raises ValueError if `sha`
        is not a lowercase sha256 hex digest, so no key can name a path outside the cache."""
        if not _SHA256_HEX.fullmatch(sha):
            raise ValueError("an input cache key must be 64 lowercase hex characters")
        return self.root / sha[:2] / sha

    def __contains__(self, sha: object) -> bool:
        return isinstance(sha, str) and self._existing(sha) is not None

    def prune(self) -> int:
        """Remove entries unused for max_age_seconds, then the least recently used until the
        cache holds at most max_bytes; also clear leftovers of interrupted writes. Returns the
        number of entries removed."""
        now = self._clock()
        removed = 0
        kept: list[_Entry] = []
        for entry in self._entries():
            if now - entry.used_at > self.max_age_seconds:
                removed += self._remove(entry.sha)
            else:
                kept.append(entry)
        total = sum(entry.size for entry in kept)
        for entry in sorted(kept, key=lambda e: e.used_at):
            if total <= self.max_bytes:
                break
            removed += self._remove(entry.sha)
            total -= entry.size
        self._remove_debris(now)
        return removed

    def total_bytes(self) -> int:
        """How many bytes the stored entries hold."""
        return sum(entry.size for entry in self._entries())

    def _existing(self, sha: str) -> Path | None:
        try:
            target = self.path(sha)
        except ValueError:
            return None
        return target if target.is_file() else None

    def _touch(self, target: Path) -> None:
        now = self._clock()
        with contextlib.suppress(FileNotFoundError):
            os.utime(target, (now, now))

    def _entries(self) -> Iterator[_Entry]:
        if not self.root.is_dir():
            return
        for shard in self.root.iterdir():
            if not shard.is_dir() or len(shard.name) != 2:
                continue
            for item in shard.iterdir():
                if not _SHA256_HEX.fullmatch(item.name):
                    continue
                try:
                    stat = item.stat()
                except FileNotFoundError:
                    continue
                yield _Entry(sha=item.name, size=stat.st_size, used_at=stat.st_mtime)

    def _remove(self, sha: str) -> int:
        target = self.path(sha)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
            return 1
        return 0

    def _remove_debris(self, now: float) -> None:
        """Delete temp files from crashed writes and the type files earlier versions wrote."""
        if not self.root.is_dir():
            return
        for shard in self.root.iterdir():
            if not shard.is_dir():
                continue
            for item in shard.iterdir():
                name = item.name
                with contextlib.suppress(FileNotFoundError):
                    if name.startswith(_TEMP_PREFIX):
                        # A write in progress is young; one older than the age bound is debris.
                        if now - item.stat().st_mtime > self.max_age_seconds:
                            item.unlink()
                    elif name.endswith(_LEGACY_TYPE_SUFFIX):
                        item.unlink()


def _write_atomic(target: Path, data: bytes) -> None:
    # A reader sees either no file or the whole file, never a partial write.
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
