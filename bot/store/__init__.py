"""SQLite persistence for the bot: jobs, the credit ledger, limits, settings, audit and meta."""

from bot.store.errors import (
    AllowanceExceeded,
    DatabaseTooNew,
    GlobalBudgetExceeded,
    GuildBudgetExceeded,
    MemberBlocked,
    MigrationEdited,
    MigrationError,
    MigrationFailed,
    QuotaExceeded,
    QuotaReason,
    StoreError,
    TooManyJobs,
)
from bot.store.jobs import (
    TERMINAL_STATES,
    UNFINISHED_STATES,
    DeliveryPath,
    Job,
    JobChanges,
    JobState,
    NewJob,
    new_job_id,
)
from bot.store.ledger import (
    Balance,
    DaySpend,
    DayTotals,
    LedgerEntry,
    LedgerKind,
    MemberSpend,
    allowance_period,
    next_reset,
)
from bot.store.privacy import ForgottenMember
from bot.store.schema import Migration, bundled_migrations
from bot.store.settings import AuditEntry, Block, Glance, GuildSettings
from bot.store.store import Store

__all__ = [
    "TERMINAL_STATES",
    "UNFINISHED_STATES",
    "AllowanceExceeded",
    "AuditEntry",
    "Balance",
    "Block",
    "DatabaseTooNew",
    "DaySpend",
    "DayTotals",
    "DeliveryPath",
    "ForgottenMember",
    "Glance",
    "GlobalBudgetExceeded",
    "GuildBudgetExceeded",
    "GuildSettings",
    "Job",
    "JobChanges",
    "JobState",
    "LedgerEntry",
    "LedgerKind",
    "MemberBlocked",
    "MemberSpend",
    "Migration",
    "MigrationEdited",
    "MigrationError",
    "MigrationFailed",
    "NewJob",
    "QuotaExceeded",
    "QuotaReason",
    "Store",
    "StoreError",
    "TooManyJobs",
    "allowance_period",
    "bundled_migrations",
    "new_job_id",
    "next_reset",
]
