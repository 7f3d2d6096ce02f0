"""The PostgreSQL store: one database reached through the same table groups as SQLite's,
`store.jobs`, `store.ledger`, `store.rules`, `store.audit` and `store.meta` (bot/store/api.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType

from bot.store.api import AuditStore, JobStore, LedgerStore, MetaStore, RulesStore, StoreBackend
from bot.store.postgres.audit import PgAudit
from bot.store.postgres.db import Clock, PgDatabase
from bot.store.postgres.jobs import PgJobs
from bot.store.postgres.ledger import PgLedger
from bot.store.postgres.meta import PgMeta
from bot.store.postgres.rules import PgRules
from bot.store.schema import Migration


class PgStore:
    """One open PostgreSQL database. Build it with `await PgStore.open(dsn)` (or from an open
    PgDatabase); close it with `async with`."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db
        self.jobs: JobStore = PgJobs(db)
        self.ledger: LedgerStore = PgLedger(db)
        self.rules: RulesStore = PgRules(db)
        self.audit: AuditStore = PgAudit(db)
        self.meta: MetaStore = PgMeta(db)

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        clock: Clock = time.time,
        min_size: int = 1,
        max_size: int = 10,
        migrations: Sequence[Migration] | None = None,
    ) -> PgStore:
        """Connect a pool of `min_size` to `max_size` connections and apply pending migrations."""
        db = await PgDatabase.open(
            dsn, clock=clock, min_size=min_size, max_size=max_size, migrations=migrations
        )
        return cls(db)

    @property
    def database(self) -> PgDatabase:
        """The pool underneath, for `check` (server version) and the move from SQLite."""
        return self._db

    @property
    def path(self) -> str:
        """Where the database is: its URL without the password."""
        return self._db.dsn_for_logs

    async def close(self) -> None:
        """Close the pool; the store cannot be used afterwards."""
        await self._db.close()

    async def __aenter__(self) -> PgStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _implements(store: PgStore) -> StoreBackend:
    # mypy checks here that the PostgreSQL store keeps to the whole contract of bot/store/api.py.
    return store
