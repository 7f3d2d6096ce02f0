"""The concurrent reservations the PostgreSQL concurrency tests make, in one process or several:
who asks, in which server, at what cost, and the one limit that must hold."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.store import QuotaExceeded, StoreBackend
from tests.store.factories import limits, new_job

COST = 7


@dataclass(frozen=True)
class Scenario:
    """Reservation number i is member `user(i)` in server `guild(i)`, under `limits`."""

    name: str
    members: int  # distinct members, numbered from 100
    guilds: int  # distinct servers, numbered from 1
    limits: dict[str, Any]
    limit: int  # the credits (or jobs) the limit under test allows
    refusal: str  # the QuotaExceeded subclass the others get

    def user(self, i: int) -> int:
        return 100 + i % self.members

    def guild(self, i: int) -> int:
        return 1 + i % self.guilds

    @property
    def accepted(self) -> int:
        """How many reservations fit: the limit allows exactly this many at COST (or jobs)."""
        return self.limit if self.refusal == "TooManyJobs" else self.limit // COST


SCENARIOS = {
    s.name: s
    for s in (
        # One member's allowance in one server: 100 // 7 = 14 jobs.
        Scenario("member", 1, 1, limits(allowance=100), 100, "AllowanceExceeded"),
        # One member's unfinished jobs, asked for in four servers at once.
        Scenario("unfinished", 1, 4, limits(max_unfinished=5), 5, "TooManyJobs"),
        # One server's budget, shared by 100 members.
        Scenario("server", 100, 1, limits(guild_budget=150), 150, "GuildBudgetExceeded"),
        # The operator's global budget, across 10 servers and 100 members.
        Scenario("global", 100, 10, limits(global_budget=200), 200, "GlobalBudgetExceeded"),
    )
}


async def reserve_all(
    store: StoreBackend, scenario: Scenario, numbers: Iterable[int]
) -> tuple[int, dict[str, int]]:
    """Make the reservations all at once; how many were accepted, and the refusals by type."""

    async def reserve(i: int) -> str:
        job = new_job(user_id=scenario.user(i), guild_id=scenario.guild(i))
        try:
            await store.jobs.create(job, cost=COST, actor_id=job.user_id, **scenario.limits)
        except QuotaExceeded as exc:
            return type(exc).__name__
        return "accepted"

    outcomes = Counter(await asyncio.gather(*(reserve(i) for i in numbers)))
    accepted = outcomes.pop("accepted", 0)
    return accepted, dict(outcomes)
