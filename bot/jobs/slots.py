"""The fal slots: which jobs hold one, so the scheduler sends at most `fal_concurrency` at once."""

from __future__ import annotations

import asyncio

from bot.jobs.queue import FairQueue
from bot.store import Job


class FalSlots:
    """Jobs holding a fal slot, each counted for its member in the fair queue.

    The scheduler takes a slot for each job it starts; the runner gives it back as soon as fal
    is done with the job (before the video is fetched and posted), which wakes the scheduler.
    """

    def __init__(self, queue: FairQueue, freed: asyncio.Event) -> None:
        self._queue = queue
        self._freed = freed
        self._holders: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._holders)

    def take(self, job: Job) -> None:
        """A job the scheduler took from the queue (which counted it at fal already)."""
        self._holders[job.id] = job.user_id

    def resume(self, job: Job) -> None:
        """A job found at fal after a restart or a failed try: counted once."""
        if job.id not in self._holders:
            self._holders[job.id] = job.user_id
            self._queue.started(job.user_id)

    def give_back(self, job: Job) -> None:
        """fal is done with the job (or it never got there): the next one may go."""
        user_id = self._holders.pop(job.id, None)
        if user_id is not None:
            self._queue.finished(user_id)
            self._freed.set()
