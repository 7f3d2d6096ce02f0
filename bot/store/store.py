"""The SQLite store: one database reached through its table groups, `store.jobs`,
`store.ledger`, `store.rules`, `store.audit` and `store.meta` (their contract: bot/store/api.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from bot.store.api import AuditStore, JobStore, LedgerStore, MetaStore, RulesStore, StoreBackend
from bot.store.audit import SqliteAudit
from bot.store.db import Clock, Database
from bot.store.jobs import SqliteJobs
from bot.store.ledger import SqliteLedger
from bot.store.meta import SqliteMeta
from bot.store.rules import SqliteRules
from bot.store.schema import Migration


class Store:
    """One open database. Build it with `await Store.open(path)`; close it with `async with`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.jobs: JobStore = SqliteJobs(db)
        self.ledger: LedgerStore = SqliteLedger(db)
        self.rules: RulesStore = SqliteRules(db)
        self.audit: AuditStore = SqliteAudit(db)
        self.meta: MetaStore = SqliteMeta(db)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        clock: Clock = time.time,
        busy_timeout_ms: int = 5000,
        migrations: Sequence[Migration] | None = None,
    ) -> Store:
        """Open (creating if needed) the database at `path` and apply pending migrations.

        `":memory:"` gives a private in-memory database, for tests.
        """
        db = await Database.open(
            path, clock=clock, busy_timeout_ms=busy_timeout_ms, migrations=migrations
        )
        return cls(db)

    @property
    def path(self) -> str:
        """Where the database is (":memory:" for a private one)."""
        return self._db.path

    async def close(self) -> None:
        """Close the connections; the store cannot be used afterwards."""
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _implements(store: Store) -> StoreBackend:
    # mypy checks here that the SQLite store keeps to the whole contract of bot/store/api.py.
    return store
