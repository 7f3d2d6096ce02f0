"""The audit trail of admin actions: its entries and the table group that records and reads them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.store.db import Database, fetchone


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin action, as recorded."""

    id: int
    ts: int
    guild_id: int
    actor_id: int
    action: str
    details_json: str

    @property
    def details(self) -> dict[str, Any]:
        """The recorded details, parsed."""
        parsed: dict[str, Any] = json.loads(self.details_json)
        return parsed


class SqliteAudit:
    """The `audit` table (the store's own setters record their actions already)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        guild_id: int,
        actor_id: int,
        action: str,
        details: Mapping[str, object] | None = None,
    ) -> AuditEntry:
        """Record an admin action (the store's own setters record theirs already)."""
        async with self._db.write() as db:
            return await record(db, self._db.now(), guild_id, actor_id, action, details or {})

    async def log(self, guild_id: int, *, limit: int = 20) -> list[AuditEntry]:
        """The server's newest audit entries, newest first."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(
                "SELECT id, ts, guild_id, actor_id, action, details FROM audit "
                "WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
                (guild_id, limit),
            )
        return [_audit_entry(row) for row in rows]


async def record(
    db: aiosqlite.Connection,
    now: int,
    guild_id: int,
    actor_id: int,
    action: str,
    details: Mapping[str, object],
) -> AuditEntry:
    """Append an audit entry inside the caller's write block."""
    row = await fetchone(
        db,
        "INSERT INTO audit (ts, guild_id, actor_id, action, details) VALUES (?, ?, ?, ?, ?) "
        "RETURNING id, ts, guild_id, actor_id, action, details",
        (now, guild_id, actor_id, action, json.dumps(dict(details), sort_keys=True, default=str)),
    )
    return _audit_entry(row)


def _audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=int(row[0]),
        ts=int(row[1]),
        guild_id=int(row[2]),
        actor_id=int(row[3]),
        action=str(row[4]),
        details_json=str(row[5]),
    )
