"""Errors the store raises: refused reservations and database set-up failures."""

from __future__ import annotations

from enum import StrEnum


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class MigrationError(StoreError):
    """The database schema could not be brought up to date."""


class MigrationFailed(MigrationError):
    """A migration raised while being applied; nothing of it was kept."""

    def __init__(self, version: int, name: str, cause: BaseException) -> None:
        super().__init__(f"database migration {version:04d}_{name} failed: {cause}")
        self.version = version
        self.name = name


class MigrationEdited(MigrationError):
    """A migration already applied to this database has since been changed on disk."""

    def __init__(self, version: int, name: str) -> None:
        super().__init__(
            f"database migration {version:04d}_{name} was edited after it was applied; "
            "schema changes belong in a new numbered migration"
        )
        self.version = version
        self.name = name


class DatabaseTooNew(MigrationError):
    """The database was migrated by a newer version of the bot than this one."""

    def __init__(self, version: int, known: int) -> None:
        super().__init__(
            f"the database is at schema version {version} but this version of the bot only "
            f"knows up to {known}; upgrade the bot or restore a matching backup"
        )
        self.version = version
        self.known = known


class InvalidBlockedWord(StoreError, ValueError):
    """A word an admin asked to block (or unblock) that cannot be one: empty, or too long."""


class QuotaReason(StrEnum):
    """Why a job was refused before anything was charged."""

    BLOCKED = "blocked"
    TOO_MANY_JOBS = "too_many_jobs"
    MEMBER_ALLOWANCE = "member_allowance"
    GUILD_BUDGET = "guild_budget"
    GLOBAL_BUDGET = "global_budget"


class QuotaExceeded(StoreError):
    """A job was refused by a quota, a budget or a block; nothing was written.

    `cost` is what the job would have cost, `left` what remained of the limit that refused it
    (unfinished job slots for TOO_MANY_JOBS), `limit` that limit itself.
    """

    reason: QuotaReason

    def __init__(self, message: str, *, cost: int, left: int, limit: int) -> None:
        super().__init__(message)
        self.cost = cost
        self.left = left
        self.limit = limit


class MemberBlocked(QuotaExceeded):
    """The member is blocked from generating in this server."""

    reason = QuotaReason.BLOCKED

    def __init__(self, *, cost: int) -> None:
        super().__init__(
            "You are blocked from making videos in this server. Ask a server admin if you "
            "think this is a mistake.",
            cost=cost,
            left=0,
            limit=0,
        )


class TooManyJobs(QuotaExceeded):
    """The member already has as many unfinished jobs as allowed."""

    reason = QuotaReason.TOO_MANY_JOBS

    def __init__(self, *, cost: int, unfinished: int, limit: int) -> None:
        super().__init__(
            f"You already have {unfinished} unfinished job{'s' if unfinished != 1 else ''}; "
            f"at most {limit} may wait or run at once. Wait for one to finish or cancel it "
            "with /pika cancel.",
            cost=cost,
            left=max(0, limit - unfinished),
            limit=limit,
        )
        self.unfinished = unfinished


class AllowanceExceeded(QuotaExceeded):
    """The job costs more than the member has left today."""

    reason = QuotaReason.MEMBER_ALLOWANCE

    def __init__(self, *, cost: int, left: int, limit: int) -> None:
        super().__init__(
            f"This video costs {cost} credits and you have {max(0, left)} left today "
            f"(your daily allowance is {limit}).",
            cost=cost,
            left=left,
            limit=limit,
        )


class GuildBudgetExceeded(QuotaExceeded):
    """The job would pass the server's daily budget."""

    reason = QuotaReason.GUILD_BUDGET

    def __init__(self, *, cost: int, left: int, limit: int) -> None:
        super().__init__(
            f"This server's daily budget is nearly spent: this video costs {cost} credits and "
            f"only {max(0, left)} of {limit} are left today.",
            cost=cost,
            left=left,
            limit=limit,
        )


class GlobalBudgetExceeded(QuotaExceeded):
    """The job would pass the bot's daily budget across all servers."""

    reason = QuotaReason.GLOBAL_BUDGET

    def __init__(self, *, cost: int, left: int, limit: int) -> None:
        super().__init__(
            f"The bot's daily budget across all servers is nearly spent: this video costs "
            f"{cost} credits and only {max(0, left)} are left today.",
            cost=cost,
            left=left,
            limit=limit,
        )
