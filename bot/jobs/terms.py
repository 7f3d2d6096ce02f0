"""The terms a job is asked and accepted on: who asks and where, the operator's limits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.pika.prices import PriceList
from bot.store import Job


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks for a job, where, and the interaction it came from (if any)."""

    guild_id: int
    channel_id: int  # where the job's replies and video go (a thread's own id)
    user_id: int
    role_ids: Sequence[int] = ()
    interaction_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)
    token_expires_at: int | None = None
    upload_limit: int | None = None  # bytes one message may carry there
    parent_channel_id: int | None = None  # a thread's channel, which the allow-list names


@dataclass(frozen=True, slots=True)
class Limits:
    """The operator's defaults for quotas and budgets (admins refine them per server)."""

    prices: PriceList
    daily_allowance: int
    reset_hour: int
    guild_daily_budget: int
    global_daily_budget: int
    max_jobs_per_member: int
    fal_concurrency: int


@dataclass(frozen=True, slots=True)
class Accepted:
    """A job written down with its reservation, and its place in the bot's queue."""

    job: Job
    position: int
