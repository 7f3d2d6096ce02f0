"""The bot's own fair queue: which waiting job goes to fal next, and where each job stands."""

from __future__ import annotations

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
    the member whose oldest job is oldest.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, Waiting] = {}
        self._at_fal: Counter[int] = Counter()
        self._seq = 0

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

    def remove(self, job_id: str) -> bool:
        """Take a job out without starting it (cancelled); False if it was not waiting."""
        return self._waiting.pop(job_id, None) is not None

    def started(self, user_id: int) -> None:
        """Count a job of this member as at fal (also for jobs resumed after a restart)."""
        self._at_fal[user_id] += 1

    def finished(self, user_id: int) -> None:
        """A job of this member left fal."""
        if self._at_fal[user_id] > 0:
            self._at_fal[user_id] -= 1
        if self._at_fal[user_id] == 0:
            del self._at_fal[user_id]

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
        by_member: dict[int, list[Waiting]] = {}
        for item in sorted(self._waiting.values()):
            by_member.setdefault(item.user_id, []).append(item)
        result: list[Waiting] = []
        while by_member:
            user_id = min(by_member, key=lambda user: (at_fal[user], by_member[user][0]))
            item = by_member[user_id].pop(0)
            if not by_member[user_id]:
                del by_member[user_id]
            at_fal[user_id] += 1
            result.append(item)
        return result

    def pop(self) -> Waiting | None:
        """The next job to send to fal, taken out of the queue and counted at fal; None if empty."""
        if not self._waiting:
            return None
        oldest: dict[int, Waiting] = {}
        for item in self._waiting.values():
            if item.user_id not in oldest or item < oldest[item.user_id]:
                oldest[item.user_id] = item
        chosen = min(oldest.values(), key=lambda item: (self._at_fal[item.user_id], item))
        del self._waiting[chosen.job_id]
        self.started(chosen.user_id)
        return chosen

    def positions(self) -> dict[str, int]:
        """Each waiting job's place in line, 1 for the next to start."""
        return {item.job_id: place for place, item in enumerate(self.order(), start=1)}
