"""Retention and privacy: pruning cached inputs, downloaded videos and old jobs' prompts,
forgetting a member.

It lives with the jobs, not in `bot.ops`: what it removes is what jobs leave behind (their
inputs, videos and prompts), it must know which jobs are unfinished to leave their files alone,
and it runs beside them in the background; the operator only starts it (`forget`) or reads
its counts (/metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.media import InputCache, fitted_path
from bot.ops.metrics import Metrics
from bot.store import ForgottenMember, StoreBackend

log = logging.getLogger(__name__)

# A video being written has this suffix until it is complete (bot.media.download); a young
# one is a download in progress, never debris.
_PARTIAL_GRACE_S = 3600.0


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What one pruning pass removed: files, and jobs whose prompts and personal data it cleared."""

    inputs: int
    videos: int
    jobs: int = 0


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """What forgetting a member removed: database changes and files."""

    forgotten: ForgottenMember
    videos_deleted: int
    inputs_deleted: int

    def summary(self) -> str:
        """A few lines for the operator (CLI) or the admin (reply)."""
        f = self.forgotten
        lines = [
            f"member {f.user_id} in server {f.guild_id}: {len(f.job_ids)} finished jobs scrubbed "
            f"(prompts, inputs, links), {self.videos_deleted} videos and {self.inputs_deleted} "
            f"cached inputs deleted, {f.ledger_rows} ledger rows and {f.audit_rows} audit "
            "entries anonymised (amounts kept, so budgets still add up)",
        ]
        if f.unfinished:
            lines.append(
                f"{f.unfinished} unfinished jobs were left alone: run this again once they end"
            )
        return "\n".join(lines)


def prune_videos(
    folder: Path,
    *,
    max_age_seconds: float,
    max_bytes: int,
    now: float,
    keep: Collection[Path] = (),
) -> int:
    """Delete videos unused for `max_age_seconds`, then the oldest until the folder holds at most
    `max_bytes`; files in `keep` (videos of unfinished jobs) are never deleted. Returns how many
    files were removed. Blocking file I/O: run it in a thread."""
    if not folder.is_dir():
        return 0
    protected = {path.resolve() for path in keep}
    files: list[tuple[float, int, Path]] = []
    kept_bytes = 0
    for entry in os.scandir(folder):
        if not entry.is_file(follow_symlinks=False):
            continue
        path = Path(entry.path)
        stat = entry.stat(follow_symlinks=False)
        if path.resolve() in protected:
            kept_bytes += stat.st_size
            continue
        files.append((stat.st_mtime, stat.st_size, path))
    removed = 0
    young: list[tuple[float, int, Path]] = []
    for mtime, size, path in files:
        grace = _PARTIAL_GRACE_S if path.name.endswith(".part") else 0.0
        if now - mtime > max(max_age_seconds, grace):
            removed += _unlink(path)
        else:
            young.append((mtime, size, path))
    total = kept_bytes + sum(size for _, size, _ in young)
    for _mtime, size, path in sorted(young):
        if total <= max_bytes:
            break
        if path.name.endswith(".part"):
            continue
        removed += _unlink(path)
        total -= size
    return removed


def _unlink(path: Path) -> int:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        return 1
    return 0


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


class Retention:
    """Keeps the data folder bounded and deletes a member's data on request.

    `run()` prunes every `interval_seconds` until cancelled (the bot starts it in setup_hook).
    With `jobs_max_age_seconds`, each pass also clears what jobs finished longer ago than that
    kept of their member's request (prompts, inputs, links, video), keeping the rows for the
    ledger.
    """

    def __init__(
        self,
        *,
        store: StoreBackend,
        cache: InputCache,
        output_dir: Path,
        videos_max_age_seconds: float,
        videos_max_bytes: int,
        interval_seconds: float = 3600.0,
        jobs_max_age_seconds: float | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._cache = cache
        self._output_dir = output_dir
        self._videos_max_age = videos_max_age_seconds
        self._videos_max_bytes = videos_max_bytes
        self._interval = interval_seconds
        self._jobs_max_age = jobs_max_age_seconds
        self._metrics = metrics
        self._clock = clock

    async def prune(self) -> PruneReport:
        """One pass over old jobs, the input cache and the videos folder."""
        jobs = expired_videos = expired_inputs = 0
        if self._jobs_max_age is not None:
            expired = await self._store.meta.expire_jobs(int(self._clock() - self._jobs_max_age))
            jobs = expired.jobs
            expired_videos = await asyncio.to_thread(self._delete_videos, expired.output_paths)
            expired_inputs = await asyncio.to_thread(self._delete_inputs, expired.orphaned_inputs)
        inputs = expired_inputs + await asyncio.to_thread(self._cache.prune)
        keep = [
            Path(job.output_path)
            for job in await self._store.jobs.unfinished()
            if job.output_path is not None
        ]
        # A video being delivered has its re-encoded copy beside it.
        keep += [fitted_path(path) for path in keep]
        videos = expired_videos + await asyncio.to_thread(
            prune_videos,
            self._output_dir,
            max_age_seconds=self._videos_max_age,
            max_bytes=self._videos_max_bytes,
            now=self._clock(),
            keep=keep,
        )
        if self._metrics is not None:
            self._metrics.pruned.inc("input", amount=inputs)
            self._metrics.pruned.inc("video", amount=videos)
        if inputs or videos or jobs:
            log.info(
                "retention: removed %d cached inputs and %d videos, cleared %d old jobs",
                inputs,
                videos,
                jobs,
            )
        return PruneReport(inputs=inputs, videos=videos, jobs=jobs)

    async def run(self) -> None:
        """Prune now and then every interval, until cancelled; a failed pass is logged."""
        while True:
            try:
                await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention: pruning failed; trying again next interval")
            await asyncio.sleep(self._interval)

    async def forget(self, guild_id: int, user_id: int) -> ForgetReport:
        """Delete a member's data in one server (their request, or an admin's): finished jobs
        scrubbed, their videos and the cached inputs no other job uses deleted, ledger rows
        anonymised. Unfinished jobs are left to end first."""
        forgotten = await self._store.meta.forget_member(guild_id, user_id)
        videos = await asyncio.to_thread(self._delete_videos, forgotten.output_paths)
        inputs = await asyncio.to_thread(self._delete_inputs, forgotten.orphaned_inputs)
        report = ForgetReport(forgotten=forgotten, videos_deleted=videos, inputs_deleted=inputs)
        log.info(
            "forgot member: %d jobs, %d videos, %d inputs, %d ledger rows",
            len(forgotten.job_ids),
            videos,
            inputs,
            forgotten.ledger_rows,
            extra={"guild_id": guild_id, "user_id": user_id},
        )
        return report

    def _delete_videos(self, paths: Iterable[str]) -> int:
        deleted = 0
        for name in paths:
            path = Path(name)
            # Only files in the videos folder: a path in the database is not a licence to delete.
            if not _inside(path, self._output_dir):
                log.warning("forget: not deleting %s, outside %s", path, self._output_dir)
                continue
            deleted += _unlink(path)
            _unlink(fitted_path(path))
        return deleted

    def _delete_inputs(self, hashes: Iterable[str]) -> int:
        deleted = 0
        for sha in hashes:
            try:
                path = self._cache.path(sha)
            except ValueError:
                continue
            deleted += _unlink(path)
        return deleted
