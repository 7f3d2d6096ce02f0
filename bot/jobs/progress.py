"""Throttled progress edits: at most one per job per interval, and few per channel at once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.jobs.messenger import Progress, ProgressGone
from bot.store import Job

log = logging.getLogger(__name__)

Show = Callable[[Job, Progress], Awaitable[None]]


@dataclass(slots=True)
class _Entry:
    job: Job
    latest: Progress
    shown: Progress | None = None
    last_edit: float = float("-inf")


class ProgressBoard:
    """Keeps the newest progress of every job and sends only what is due.

    A job is edited at most once every `interval` seconds; a report that arrives sooner is
    kept and sent when its turn comes, so the member always ends up seeing the newest state.
    Discord limits edits per channel (about 5 per 5 s), so at most `per_channel` edits go to
    one channel per `interval`, oldest-shown first: many jobs in one channel update less often.
    """

    def __init__(
        self,
        show: Show,
        *,
        interval: float,
        per_channel: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._show = show
        self.interval = interval
        self.per_channel = per_channel
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._channel_edits: dict[int, list[float]] = {}
        # Jobs and channels whose progress Discord refused for good (ProgressGone): no more edits.
        self._gone_jobs: set[str] = set()
        self._gone_channels: set[int] = set()
        self._wake = asyncio.Event()

    def report(self, job: Job, progress: Progress) -> None:
        """Record the newest progress of a job; it is shown when due."""
        if job.id in self._gone_jobs or job.channel_id in self._gone_channels:
            return
        entry = self._entries.get(job.id)
        if entry is None:
            self._entries[job.id] = _Entry(job, progress)
        else:
            entry.job = job
            entry.latest = progress
        self._wake.set()

    def shown_now(self, job: Job, progress: Progress) -> None:
        """Note that the caller just showed this progress itself (e.g. in the first reply)."""
        now = self._clock()
        self._entries[job.id] = _Entry(job, progress, shown=progress, last_edit=now)
        self._channel_edits.setdefault(job.channel_id, []).append(now)

    def forget(self, job_id: str) -> None:
        """The job has ended: stop editing its progress."""
        self._entries.pop(job_id, None)
        self._gone_jobs.discard(job_id)

    def due(self) -> list[_Entry]:
        """The edits to send now, within the per-job and per-channel limits (and book them)."""
        now = self._clock()
        pending = [
            entry
            for entry in self._entries.values()
            if entry.latest != entry.shown and now - entry.last_edit >= self.interval
        ]
        pending.sort(key=lambda entry: entry.last_edit)
        chosen = []
        for entry in pending:
            recent = [
                t
                for t in self._channel_edits.get(entry.job.channel_id, [])
                if now - t < self.interval
            ]
            if len(recent) >= self.per_channel:
                self._channel_edits[entry.job.channel_id] = recent
                continue
            recent.append(now)
            self._channel_edits[entry.job.channel_id] = recent
            entry.last_edit = now
            entry.shown = entry.latest
            chosen.append(entry)
        return chosen

    async def flush(self) -> int:
        """Send every due edit; returns how many were sent. Failures are logged, not raised."""
        chosen = self.due()
        if not chosen:
            return 0
        results = await asyncio.gather(
            *(self._show(entry.job, entry.latest) for entry in chosen), return_exceptions=True
        )
        done = self._clock()
        for entry, result in zip(chosen, results, strict=True):
            # The interval runs from when the edit was answered, so a slow edit followed by a
            # fast one can never reach Discord closer together than the interval.
            entry.last_edit = max(entry.last_edit, done)
            if isinstance(result, ProgressGone):
                self._give_up(entry.job, result)
            elif isinstance(result, Exception):
                log.warning("progress edit for job %s failed: %r", entry.job.id, result)
        return len(chosen)

    def _give_up(self, job: Job, gone: ProgressGone) -> None:
        """Stop editing a reply Discord will never take an edit for (and every reply in its
        channel if the channel itself is gone); the delivery then takes its own fallbacks."""
        log.info("%s: its progress is no longer edited", gone)
        self._gone_jobs.add(job.id)
        self._entries.pop(job.id, None)
        if gone.whole_channel:
            self._gone_channels.add(job.channel_id)
            for other in [e.job.id for e in self._entries.values()]:
                if self._entries[other].job.channel_id == job.channel_id:
                    del self._entries[other]

    async def run(self, tick: float = 1.0) -> None:
        """Send due edits forever, waking at least every `tick` seconds while work is pending."""
        while True:
            await self.flush()
            self._wake.clear()
            if any(e.latest != e.shown for e in self._entries.values()):
                await asyncio.sleep(tick)
            else:
                await self._wake.wait()
