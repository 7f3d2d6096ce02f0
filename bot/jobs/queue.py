"""The bot's own fair queue: which waiting job goes to fal next, and where each job stands."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Waiting:
    """A job waiting for a fal slot, in the order it was accepted."""

    created_at: int
    seq: int
    job_id: str
    user_id: int


class FairQueue:
    """Jobs waiting for a fal slot.

    The next job is the oldest job of the member who has the fewest jobs at fal right now, so
    one member's burst never holds up another member's first job. Ties between members go to
    the member whose last job started longest ago (never: first), then to the member whose
    oldest job is oldest. The middle rule matters when fal slots are few: with one slot,
    nobody has a job at fal when the next is picked, and without it the oldest job would
    always win, which is first come, first served.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, Waiting] = {}
        self._at_fal: Counter[int] = Counter()
        self._seq = 0
        self._starts = 0
        # Members with jobs waiting or at fal -> when their last job started (a start count).
        self._last_start: dict[int, int] = {}
        self._waiting_of: Counter[int] = Counter()  # member -> jobs waiting

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._waiting

    def add(self, job_id: str, user_id: int, created_at: int) -> None:
        """Put a job in the queue (again, after a restart); adding twice keeps the first place."""
        if job_id in self._waiting:
            return
        self._seq += 1
        self._waiting[job_id] = Waiting(created_at, self._seq, job_id, user_id)
        self._waiting_of[user_id] += 1

    def accepted_before(self, moment: float) -> list[Waiting]:
        """The waiting jobs accepted before `moment` (e.g. those past their deadline)."""
        return [item for item in self._waiting.values() if item.created_at < moment]

    def remove(self, job_id: str) -> bool:
        """Take a job out without starting it (cancelled); False if it was not waiting."""
        item = self._waiting.pop(job_id, None)
        if item is None:
            return False
        self._waiting_of[item.user_id] -= 1
        self._forget_idle(item.user_id)
        return True

    def started(self, user_id: int) -> None:
        """Count a job of this member as at fal (also for jobs resumed after a restart)."""
        self._at_fal[user_id] += 1
        self._starts += 1
        self._last_start[user_id] = self._starts

    def finished(self, user_id: int) -> None:
        """A job of this member left fal."""
        if self._at_fal[user_id] > 0:
            self._at_fal[user_id] -= 1
        if self._at_fal[user_id] == 0:
            del self._at_fal[user_id]
        self._forget_idle(user_id)

    def _forget_idle(self, user_id: int) -> None:
        # A member with nothing waiting or at fal starts afresh, so the map stays small.
        if self._at_fal[user_id] == 0 and self._waiting_of[user_id] <= 0:
            self._last_start.pop(user_id, None)
            self._at_fal.pop(user_id, None)
            self._waiting_of.pop(user_id, None)

    def at_fal(self, user_id: int | None = None) -> int:
        """Jobs at fal now, of one member or in all."""
        if user_id is None:
            return sum(self._at_fal.values())
        return self._at_fal[user_id]

    def order(self) -> list[Waiting]:
        """Every waiting job in the order they would start if no other job finished or arrived.

        Simulates the picks: each pick counts as one more job at fal for its member.
        """
        at_fal = Counter(self._at_fal)
        last_start = dict(self._last_start)
        starts = self._starts
        by_member: dict[int, list[Waiting]] = {}
        for item in sorted(self._waiting.values()):
            by_member.setdefault(item.user_id, []).append(item)
        # A heap of each member's next pick: a pick only changes the picked member's key, so
        # this is O(jobs x log members); a scan of every member per pick made a burst of
        # commands quadratic (it runs on every accept, in the event loop).
        heap = [
            (at_fal[user], last_start.get(user, 0), items[0], user)
            for user, items in by_member.items()
        ]
        heapq.heapify(heap)
        heads = {user: 0 for user in by_member}
        result: list[Waiting] = []
        while heap:
            _, _, item, user_id = heapq.heappop(heap)
            result.append(item)
            at_fal[user_id] += 1
            starts += 1
            last_start[user_id] = starts
            heads[user_id] += 1
            items = by_member[user_id]
            if heads[user_id] < len(items):
                heapq.heappush(heap, (at_fal[user_id], starts, items[heads[user_id]], user_id))
        return result

    def pop(self) -> Waiting | None:
        """The next job to send to fal, taken out of the queue and counted at fal; None if empty."""
        if not self._waiting:
            return None
        oldest: dict[int, Waiting] = {}
        for item in self._waiting.values():
            if item.user_id not in oldest or item < oldest[item.user_id]:
                oldest[item.user_id] = item
        chosen = min(
            oldest.values(),
            key=lambda item: (
                self._at_fal[item.user_id],
                self._last_start.get(item.user_id, 0),
                item,
            ),
        )
        del self._waiting[chosen.job_id]
        self._waiting_of[chosen.user_id] -= 1
        self.started(chosen.user_id)
        return chosen

    def positions(self) -> dict[str, int]:
        """Each waiting job's place in line, 1 for the next to start."""
        return {item.job_id: place for place, item in enumerate(self.order(), start=1)}
