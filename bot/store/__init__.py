"""Persistence for the bot: jobs, the credit ledger, servers' rules, audit and meta, behind the
Protocols of bot/store/api.py: SQLite through aiosqlite, or PostgreSQL through asyncpg
(bot/store/postgres), whichever `open_store` finds named."""

from bot.store.api import (
    AuditStore,
    JobStore,
    LedgerStore,
    MetaStore,
    RulesStore,
    StoreBackend,
)
from bot.store.audit import AuditEntry
from bot.store.backends import PostgresUrl, database_location, open_store
from bot.store.errors import (
    AllowanceExceeded,
    DatabaseTooNew,
    GlobalBudgetExceeded,
    GuildBudgetExceeded,
    InvalidBlockedWord,
    MemberBlocked,
    MigrationEdited,
    MigrationError,
    MigrationFailed,
    QuotaExceeded,
    QuotaReason,
    StoreError,
    TooManyJobs,
)
from bot.store.expiry import ExpiredJobs
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
from bot.store.reservation import QuotaLimits, QuotaTotals, check_reservation
from bot.store.rules import Block, Glance, GuildSettings, allowance_of, blocklist_entry
from bot.store.schema import Migration, bundled_migrations
from bot.store.store import Store

__all__ = [
    "TERMINAL_STATES",
    "UNFINISHED_STATES",
    "AllowanceExceeded",
    "AuditEntry",
    "AuditStore",
    "Balance",
    "Block",
    "DatabaseTooNew",
    "DaySpend",
    "DayTotals",
    "DeliveryPath",
    "ExpiredJobs",
    "ForgottenMember",
    "Glance",
    "GlobalBudgetExceeded",
    "GuildBudgetExceeded",
    "GuildSettings",
    "InvalidBlockedWord",
    "Job",
    "JobChanges",
    "JobState",
    "JobStore",
    "LedgerEntry",
    "LedgerKind",
    "LedgerStore",
    "MemberBlocked",
    "MemberSpend",
    "MetaStore",
    "Migration",
    "MigrationEdited",
    "MigrationError",
    "MigrationFailed",
    "NewJob",
    "PostgresUrl",
    "QuotaExceeded",
    "QuotaLimits",
    "QuotaReason",
    "QuotaTotals",
    "RulesStore",
    "Store",
    "StoreBackend",
    "StoreError",
    "TooManyJobs",
    "allowance_of",
    "allowance_period",
    "blocklist_entry",
    "bundled_migrations",
    "check_reservation",
    "database_location",
    "new_job_id",
    "next_reset",
    "open_store",
]
