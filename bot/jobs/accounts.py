"""Members' credits and servers' rules as the cogs see them: quotas, history, the checks before
a job is accepted, and every admin setting, on top of the store."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.jobs.policy import check_channel, check_prompt, explain, option_texts
from bot.pika import (
    MODELS,
    RESOLUTIONS,
    InputRef,
    InvalidRequest,
    Mode,
    build_request,
    endpoint_for,
    mode_of,
    price,
)
from bot.store import (
    AllowanceExceeded,
    Balance,
    Block,
    DaySpend,
    GlobalBudgetExceeded,
    GuildBudgetExceeded,
    GuildSettings,
    Job,
    LedgerEntry,
    MemberBlocked,
    MemberSpend,
    QuotaLimits,
    QuotaTotals,
    StoreBackend,
    allowance_period,
    check_reservation,
    next_reset,
)

if TYPE_CHECKING:
    from bot.jobs.terms import Limits, Requester

USAGE_DAYS_MAX = 31
# Stands in for a file's bytes when a job is priced before its files are read.
_STAND_IN_SHA256 = "0" * 64


@dataclass(frozen=True, slots=True)
class Quota:
    """A member's credits in one server today, their unfinished jobs, and when credits reset."""

    user_id: int
    balance: Balance
    period: str
    resets_at: int
    running: int  # unfinished jobs in every server: the per-member job limit counts them all
    unfinished: tuple[Job, ...]  # the newest of them
    max_jobs: int
    blocked: bool


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Every limit in effect in one server: defaults, overrides, blocks and budgets."""

    default_allowance: int
    role_allowances: Mapping[int, int]
    member_allowances: Mapping[int, int]
    blocked: tuple[Block, ...]
    guild_budget: int
    guild_budget_is_default: bool
    guild_spent: int
    global_budget: int
    global_spent: int
    reset_hour: int
    resets_at: int
    max_jobs_per_member: int
    fal_concurrency: int


@dataclass(frozen=True, slots=True)
class Usage:
    """What a server spent over its last days with activity."""

    days: tuple[DaySpend, ...]  # newest first
    top_members: tuple[MemberSpend, ...]  # over those days, biggest first
    failures: Mapping[str, int]  # failed jobs by error code over those days
    refunded: int
    settled: int
    spent: int


class Accounts:
    """What members' credits and servers' rules need beyond the store: the allowance day, the
    bot's own limits and defaults, prices, validation. Plain reads and changes of a server's
    rules go to `store.rules` directly; every change is audited by the store."""

    def __init__(
        self, *, store: StoreBackend, limits: Limits, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.limits = limits
        self._clock = clock

    # -- days ------------------------------------------------------------------------------

    def period(self) -> str:
        """The allowance day that counts now."""
        return allowance_period(self._clock(), self.limits.reset_hour)

    def resets_at(self) -> int:
        """When the current allowance day ends (epoch seconds)."""
        return next_reset(self._clock(), self.limits.reset_hour)

    # -- members ---------------------------------------------------------------------------

    async def allowance(self, guild_id: int, user_id: int, role_ids: Iterable[int]) -> int:
        """The member's daily allowance: their own, else their best role's, else the default."""
        return await self.store.rules.allowance(
            guild_id, user_id, list(role_ids), self.limits.daily_allowance
        )

    async def quota(self, guild_id: int, user_id: int, role_ids: Iterable[int]) -> Quota:
        """The member's credits today, what is held by unfinished jobs, and when they reset."""
        period = self.period()
        allowance = await self.allowance(guild_id, user_id, role_ids)
        balance = await self.store.ledger.balance(
            guild_id, user_id, period=period, allowance=allowance
        )
        recent = await self.store.jobs.recent(user_id, limit=50)
        return Quota(
            user_id=user_id,
            balance=balance,
            period=period,
            resets_at=self.resets_at(),
            running=await self.store.jobs.count_unfinished(user_id),
            unfinished=tuple(job for job in recent if not job.terminal),
            max_jobs=self.limits.max_jobs_per_member,
            blocked=await self.store.rules.is_blocked(guild_id, user_id),
        )

    def guild_budget(self, settings: GuildSettings) -> int:
        """The server's daily budget: its own, else the operator's default."""
        if settings.daily_budget is not None:
            return settings.daily_budget
        return self.limits.guild_daily_budget

    # -- before a job is accepted ----------------------------------------------------------

    async def with_defaults(
        self, guild_id: int, mode: Mode, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The options with the server's default model and resolution where the member left
        them out (and only where the model makes what the member did choose)."""
        chosen = dict(options)
        settings = await self.store.rules.settings(guild_id)
        model = settings.default_models.get(mode.value)
        if chosen.get("model") is None and model in MODELS[mode] and len(MODELS[mode]) > 1:
            endpoint = endpoint_for(mode, model)
            resolution = chosen.get("resolution")
            fits = (resolution is None or resolution in endpoint.resolutions) and (
                chosen.get("aspect_ratio") is None or endpoint.accepts_aspect_ratio
            )
            if fits:
                chosen["model"] = model
        resolution = settings.default_resolution
        if resolution is not None and chosen.get("resolution") is None:
            label = chosen.get("model")
            endpoint = endpoint_for(mode, label if isinstance(label, str) else None)
            if resolution in endpoint.resolutions:
                chosen["resolution"] = resolution
        return chosen

    def estimate(
        self, mode: Mode, options: Mapping[str, object], files: Mapping[str, str | None]
    ) -> int:
        """What the job will cost, from its options and its files' declared types alone.

        `files` maps each given file option to its declared content type. Raises
        InvalidRequest as build_request would.
        """
        refs = {
            name: InputRef(
                sha256=_STAND_IN_SHA256,
                content_type="video/mp4" if name == "video" else "image/png",
            )
            for name in files
        }
        return price(build_request(mode, **options, **refs), self.limits.prices)

    async def precheck(
        self, requester: Requester, *, cost: int, texts: Iterable[str], in_intake: int = 0
    ) -> None:
        """Refuse at a glance what the reservation would refuse anyway: a blocked member, a
        channel the admins disallow, a blocked word, too many unfinished jobs, or a cost past
        the member's credits or a budget. Nothing is written; the reservation checks again.

        `in_intake` is how many other commands of the member are still having their files read:
        each will be a job, so each counts toward the job limit."""
        # One read of the store for every check: under a burst of commands each round trip
        # waits its turn on the one connection, and this runs before the defer.
        period = self.period()
        glance = await self.store.rules.glance(requester.guild_id, requester.user_id, period=period)
        if glance.blocked:
            raise MemberBlocked(cost=cost)
        check_channel(glance.settings, requester.channel_id, parent_id=requester.parent_channel_id)
        check_prompt(glance.settings, texts)
        totals = QuotaTotals(
            blocked=glance.blocked,
            unfinished=glance.unfinished + in_intake,
            day=glance.day,
            guild_spent=glance.guild_spent,
            global_spent=glance.global_spent,
        )
        limits = QuotaLimits(
            allowance=glance.allowance(requester.role_ids, self.limits.daily_allowance),
            max_unfinished=self.limits.max_jobs_per_member,
            guild_budget=self.guild_budget(glance.settings),
            global_budget=self.limits.global_daily_budget,
        )
        try:
            check_reservation(totals, limits, cost=cost)
        except (AllowanceExceeded, GuildBudgetExceeded, GlobalBudgetExceeded) as refused:
            # The credits come back at the reset: the refusal says when.
            raise explain(refused, resets_at=self.resets_at()) from None

    async def precheck_command(
        self,
        requester: Requester,
        mode: Mode,
        options: Mapping[str, object],
        files: Mapping[str, str | None],
        *,
        in_intake: int = 0,
    ) -> int:
        """Price a command from its options and run `precheck`; the estimated cost."""
        cost = self.estimate(mode, options, files)
        await self.precheck(requester, cost=cost, texts=option_texts(options), in_intake=in_intake)
        return cost

    # -- admins: what needs the bot's own limits or validation (the rest is store.rules) -----

    async def server_limits(self, guild_id: int) -> ServerLimits:
        """Every limit in effect in the server."""
        settings = await self.store.rules.settings(guild_id)
        period = self.period()
        return ServerLimits(
            default_allowance=self.limits.daily_allowance,
            role_allowances=await self.store.rules.role_limits(guild_id),
            member_allowances=await self.store.rules.member_limits(guild_id),
            blocked=tuple(await self.store.rules.blocked_members(guild_id)),
            guild_budget=self.guild_budget(settings),
            guild_budget_is_default=settings.daily_budget is None,
            guild_spent=await self.store.ledger.guild_spend(guild_id, period),
            global_budget=self.limits.global_daily_budget,
            global_spent=await self.store.ledger.global_spend(period),
            reset_hour=self.limits.reset_hour,
            resets_at=self.resets_at(),
            max_jobs_per_member=self.limits.max_jobs_per_member,
            fal_concurrency=self.limits.fal_concurrency,
        )

    async def grant(
        self, guild_id: int, user_id: int, credits: int, *, actor_id: int, note: str = ""
    ) -> LedgerEntry:
        """One-off credits for today."""
        return await self.store.ledger.grant(
            guild_id, user_id, credits, period=self.period(), actor_id=actor_id, note=note
        )

    async def reset(
        self, guild_id: int, user_id: int, *, actor_id: int, note: str = ""
    ) -> LedgerEntry:
        """Give the member back everything used today: the full allowance again."""
        return await self.store.ledger.reset_member(
            guild_id, user_id, period=self.period(), actor_id=actor_id, note=note
        )

    async def set_default_model(
        self, guild_id: int, mode: Mode | str, model: str | None, *, actor_id: int
    ) -> None:
        """The model a mode uses when the member names none; None goes back to the default."""
        mode = mode_of(mode)
        if model is not None and model not in MODELS[mode]:
            raise InvalidRequest(
                f"{mode.value} has no model {model[:40]!r}; pick one of {', '.join(MODELS[mode])}."
            )
        await self.store.rules.set_default_model(guild_id, mode.value, model, actor_id=actor_id)

    async def set_default_resolution(
        self, guild_id: int, resolution: str | None, *, actor_id: int
    ) -> None:
        """The resolution used when the member names none (where the model makes it)."""
        known = [choice.value for choice in RESOLUTIONS]
        if resolution is not None and resolution not in known:
            raise InvalidRequest(
                f"There is no resolution {resolution[:20]!r}; pick {', '.join(known)}."
            )
        await self.store.rules.set_default_resolution(guild_id, resolution, actor_id=actor_id)

    # -- admins: usage ---------------------------------------------------------------------

    async def usage(self, guild_id: int, *, days: int = 7) -> Usage:
        """Spend per day, the biggest spenders and the failures over the last `days` days."""
        days = max(1, min(days, USAGE_DAYS_MAX))
        per_day = await self.store.ledger.spend_per_day(guild_id, days=days)
        spent: Counter[int] = Counter()
        jobs: Counter[int] = Counter()
        for day in per_day:
            for member in await self.store.ledger.top_members(guild_id, day.period, limit=1000):
                spent[member.user_id] += member.spent
                jobs[member.user_id] += member.jobs
        top = sorted(spent, key=lambda user: (-spent[user], user))[:10]
        since = int(self._clock()) - days * 86400
        return Usage(
            days=tuple(per_day),
            top_members=tuple(MemberSpend(user, spent[user], jobs[user]) for user in top),
            failures=await self.store.jobs.failure_counts(guild_id, since=since),
            refunded=sum(day.refunded for day in per_day),
            settled=sum(day.settled for day in per_day),
            spent=sum(day.spent for day in per_day),
        )
