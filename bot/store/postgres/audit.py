"""The audit trail of admin actions on PostgreSQL: the table group that records and reads them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg

from bot.store.audit import AuditEntry
from bot.store.postgres.db import PgDatabase

# The details go in as text and come out as text (`::text` both ways), so the values do not
# depend on whether a jsonb codec is set on the pool's connections.
_INSERT_SQL = """
INSERT INTO audit (ts, guild_id, actor_id, action, details)
VALUES ($1, $2, $3, $4, $5::text::jsonb)
RETURNING id, ts, guild_id, actor_id, action, details::text
"""
_LOG_SQL = """
SELECT id, ts, guild_id, actor_id, action, details::text FROM audit
WHERE guild_id = $1 ORDER BY id DESC LIMIT $2
"""


class PgAudit:
    """The `audit` table (the store's own setters record their actions already)."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def add(
        self,
        guild_id: int,
        actor_id: int,
        action: str,
        details: Mapping[str, object] | None = None,
    ) -> AuditEntry:
        """Record an admin action (the store's own setters record theirs already)."""
        async with self._db.write() as conn:
            return await record(conn, self._db.now(), guild_id, actor_id, action, details or {})

    async def log(self, guild_id: int, *, limit: int = 20) -> list[AuditEntry]:
        """The server's newest audit entries, newest first."""
        async with self._db.read() as conn:
            rows = await conn.fetch(_LOG_SQL, guild_id, limit)
        return [_audit_entry(row) for row in rows]


async def record(
    conn: asyncpg.Connection,
    now: int,
    guild_id: int,
    actor_id: int,
    action: str,
    details: Mapping[str, object],
) -> AuditEntry:
    """Append an audit entry inside the caller's write block."""
    # Serialised as SQLite's store does (sorted keys, anything else as its str), so both
    # backends record the same values.
    text = json.dumps(dict(details), sort_keys=True, default=str)
    row = await conn.fetchrow(_INSERT_SQL, now, guild_id, actor_id, action, text)
    return _audit_entry(row)


def canonical_details(text: str) -> str:
    """jsonb keeps the value, not the text: give it back in the text SQLite's store keeps
    (sorted keys, Python's spacing), so `details_json` is the same on both backends."""
    return json.dumps(json.loads(text), sort_keys=True)


def _audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=int(row[0]),
        ts=int(row[1]),
        guild_id=int(row[2]),
        actor_id=int(row[3]),
        action=str(row[4]),
        details_json=canonical_details(str(row[5])),
    )
