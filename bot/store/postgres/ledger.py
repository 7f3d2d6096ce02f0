"""The credit ledger on PostgreSQL: the table group that appends and sums its rows, with the same
entries, balances and summaries as SQLite's (bot/store/ledger.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import asyncpg

from bot.store.ledger import (
    Balance,
    DaySpend,
    DayTotals,
    LedgerEntry,
    LedgerKind,
    MemberSpend,
)
from bot.store.postgres.audit import record
from bot.store.postgres.db import PgDatabase

# The running sums migration 0003 keeps (never SUMs over the day's ledger rows), in DayTotals'
# order. A server's and the day's spend leave write-offs in (fal may have billed them); a
# member's balance (DayTotals) takes them out.
_MEMBER_TOTALS_SQL = """
SELECT reserves, settles, refunds, grants, resets, write_offs FROM ledger_member_day
WHERE period = $1 AND guild_id = $2 AND user_id = $3
"""
_GUILD_SPEND_SQL = (
    "SELECT reserves - refunds FROM ledger_guild_day WHERE period = $1 AND guild_id = $2"
)
_GLOBAL_SPEND_SQL = "SELECT reserves - refunds FROM ledger_day WHERE period = $1"
# What counted against a member: write-offs came back to them, like refunds.
_SPENT = (
    "coalesce(sum(CASE kind WHEN 'reserve' THEN amount "
    "WHEN 'refund' THEN -amount WHEN 'write_off' THEN -amount END), 0)"
)
_TOP_MEMBERS_SQL = f"""
SELECT user_id, {_SPENT} AS spent, count(*) FILTER (WHERE kind = 'reserve')
FROM ledger WHERE guild_id = $1 AND period = $2
GROUP BY user_id HAVING {_SPENT} > 0 ORDER BY spent DESC, user_id LIMIT $3
"""  # noqa: S608
_SPEND_PER_DAY_SQL = """
SELECT period,
    coalesce(sum(CASE kind WHEN 'reserve' THEN amount WHEN 'refund' THEN -amount END), 0),
    coalesce(sum(amount) FILTER (WHERE kind = 'settle'), 0),
    coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0),
    count(*) FILTER (WHERE kind = 'reserve'),
    coalesce(sum(amount) FILTER (WHERE kind = 'write_off'), 0)
FROM ledger
WHERE guild_id = $1 AND kind IN ('reserve', 'settle', 'refund', 'write_off')
GROUP BY period ORDER BY period DESC LIMIT $2
"""

# ON CONFLICT DO NOTHING with no target covers the partial unique indexes too: a second
# reservation or a second ending of one job is a no-op that returns no row.
INSERT_LEDGER_SQL = """
INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, actor_id, note)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT DO NOTHING
RETURNING *
"""


class PgLedger:
    """The append-only `ledger` table and the running sums its triggers keep."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def balance(self, guild_id: int, user_id: int, *, period: str, allowance: int) -> Balance:
        """The member's credits in this server for the allowance day `period`."""
        async with self._db.read() as conn:
            totals = await day_totals(conn, guild_id, user_id, period)
        return totals.balance(allowance)

    async def grant(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        *,
        period: str,
        actor_id: int,
        note: str = "",
    ) -> LedgerEntry:
        """Give the member one-off credits for the allowance day `period`."""
        if amount <= 0:
            raise ValueError(f"a grant must be at least 1 credit, not {amount}")
        return await self._admin_entry(
            guild_id,
            user_id,
            LedgerKind.GRANT,
            lambda totals: amount,
            period=period,
            actor_id=actor_id,
            note=note,
            audit=lambda _: {"user_id": user_id, "amount": amount, "period": period, "note": note},
        )

    async def reset_member(
        self, guild_id: int, user_id: int, *, period: str, actor_id: int, note: str = ""
    ) -> LedgerEntry:
        """Credit back what the member was charged in `period` and has not had credited back.

        Only settled credits come back (as on SQLite): credits still held by unfinished jobs
        return through their own refund. The row is written even when there was nothing to
        credit, so the reset is on record.
        """
        return await self._admin_entry(
            guild_id,
            user_id,
            LedgerKind.RESET,
            lambda totals: max(0, totals.settles - totals.resets),
            period=period,
            actor_id=actor_id,
            note=note,
            audit=lambda credit: {
                "user_id": user_id,
                "credited": credit,
                "period": period,
                "note": note,
            },
        )

    async def _admin_entry(
        self,
        guild_id: int,
        user_id: int,
        kind: LedgerKind,
        amount_of: Callable[[DayTotals], int],
        *,
        period: str,
        actor_id: int,
        note: str,
        audit: Callable[[int], Mapping[str, object]],
    ) -> LedgerEntry:
        """An admin's ledger row (a grant or a reset) and its audit entry, in one transaction;
        `amount_of` reads the member's day totals as they are inside it."""
        async with self._db.write() as conn:
            # The member's totals row locked first (the order the ledger's triggers and a
            # reservation take it in): two resets at once cannot both credit the same settles.
            await lock_member_day(conn, period, guild_id, user_id)
            amount = amount_of(await day_totals(conn, guild_id, user_id, period))
            now = self._db.now()
            entry = await append(
                conn, now, period, guild_id, user_id, None, kind, amount, actor_id, note
            )
            await record(conn, now, guild_id, actor_id, kind.value, audit(amount))
        assert entry is not None
        return entry

    async def for_member(
        self, guild_id: int, user_id: int, *, period: str | None = None
    ) -> list[LedgerEntry]:
        """The member's ledger rows in this server, oldest first; one day only when given."""
        async with self._db.read() as conn:
            if period is None:
                rows = await conn.fetch(
                    "SELECT * FROM ledger WHERE guild_id = $1 AND user_id = $2 ORDER BY id",
                    guild_id,
                    user_id,
                )
            else:
                rows = await conn.fetch(
                    "SELECT * FROM ledger WHERE guild_id = $1 AND user_id = $2 AND period = $3 "
                    "ORDER BY id",
                    guild_id,
                    user_id,
                    period,
                )
        return [ledger_entry(row) for row in rows]

    async def for_job(self, job_id: str) -> list[LedgerEntry]:
        """The ledger rows of one job, oldest first."""
        async with self._db.read() as conn:
            rows = await conn.fetch("SELECT * FROM ledger WHERE job_id = $1 ORDER BY id", job_id)
        return [ledger_entry(row) for row in rows]

    async def guild_spend(self, guild_id: int, period: str) -> int:
        """Credits held or charged in this server on the allowance day `period`."""
        async with self._db.read() as conn:
            return int(await conn.fetchval(_GUILD_SPEND_SQL, period, guild_id) or 0)

    async def global_spend(self, period: str) -> int:
        """Credits held or charged across all servers on the allowance day `period`."""
        async with self._db.read() as conn:
            return int(await conn.fetchval(_GLOBAL_SPEND_SQL, period) or 0)

    async def spend_per_day(self, guild_id: int, *, days: int = 7) -> list[DaySpend]:
        """The server's spend on its last `days` allowance days with any activity, newest first."""
        async with self._db.read() as conn:
            rows = await conn.fetch(_SPEND_PER_DAY_SQL, guild_id, days)
        return [
            DaySpend(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows
        ]

    async def top_members(self, guild_id: int, period: str, *, limit: int = 5) -> list[MemberSpend]:
        """The members who spent most in this server on `period`, biggest first."""
        async with self._db.read() as conn:
            rows = await conn.fetch(_TOP_MEMBERS_SQL, guild_id, period, limit)
        return [MemberSpend(int(r[0]), int(r[1]), int(r[2])) for r in rows]


# Statement helpers for PgJobs and PgLedger; each runs inside the caller's read or write block.


async def day_totals(
    conn: asyncpg.Connection, guild_id: int, user_id: int, period: str
) -> DayTotals:
    """The member's running sums in this server on `period` (zeros before their first row)."""
    row = await conn.fetchrow(_MEMBER_TOTALS_SQL, period, guild_id, user_id)
    return DayTotals() if row is None else DayTotals(*(int(v) for v in row))


async def lock_member_day(
    conn: asyncpg.Connection, period: str, guild_id: int, user_id: int
) -> DayTotals:
    """Lock the member's totals row for `period` (creating it empty) and return its sums.

    An upsert rather than SELECT ... FOR UPDATE: FOR UPDATE locks nothing when the row does
    not exist yet (the member's first job of the day), and two transactions would both read
    zeros. The upsert waits for whoever holds or is inserting the row, and under READ
    COMMITTED its RETURNING is the row as they committed it.
    """
    row = await conn.fetchrow(
        "INSERT INTO ledger_member_day AS t (period, guild_id, user_id) VALUES ($1, $2, $3) "
        "ON CONFLICT (period, guild_id, user_id) DO UPDATE SET reserves = t.reserves "
        "RETURNING reserves, settles, refunds, grants, resets, write_offs",
        period,
        guild_id,
        user_id,
    )
    return DayTotals(*(int(v) for v in row))


async def lock_guild_day(conn: asyncpg.Connection, period: str, guild_id: int) -> int:
    """Lock the server's totals row for `period` (as `lock_member_day`); return its spend."""
    return int(
        await conn.fetchval(
            "INSERT INTO ledger_guild_day AS t (period, guild_id) VALUES ($1, $2) "
            "ON CONFLICT (period, guild_id) DO UPDATE SET reserves = t.reserves "
            "RETURNING reserves - refunds",
            period,
            guild_id,
        )
    )


async def lock_day(conn: asyncpg.Connection, period: str) -> int:
    """Lock the day's totals row for `period` (as `lock_member_day`); return its spend."""
    return int(
        await conn.fetchval(
            "INSERT INTO ledger_day AS t (period) VALUES ($1) "
            "ON CONFLICT (period) DO UPDATE SET reserves = t.reserves "
            "RETURNING reserves - refunds",
            period,
        )
    )


async def append(
    conn: asyncpg.Connection,
    ts: int,
    period: str,
    guild_id: int,
    user_id: int,
    job_id: str | None,
    kind: LedgerKind,
    amount: int,
    actor_id: int,
    note: str,
) -> LedgerEntry | None:
    """Append a ledger row; None when a uniqueness rule made it a no-op."""
    row = await conn.fetchrow(
        INSERT_LEDGER_SQL,
        ts,
        period,
        guild_id,
        user_id,
        job_id,
        kind.value,
        amount,
        actor_id,
        note,
    )
    return None if row is None else ledger_entry(row)


async def end_reservation(
    conn: asyncpg.Connection,
    now: int,
    job_id: str,
    kind: LedgerKind,
    actor_id: int,
    note: str,
) -> bool:
    """Settle, refund or write off the job's reservation inside the caller's write block;
    False if it already ended (or there is none)."""
    # The ending mirrors the reservation (same period, member and amount) so a refund or
    # settle always lands on the day the credits were taken from.
    reserve = await conn.fetchrow(
        "SELECT period, guild_id, user_id, amount FROM ledger "
        "WHERE job_id = $1 AND kind = 'reserve'",
        job_id,
    )
    if reserve is None:
        return False
    period, guild_id, user_id, amount = reserve
    entry = await append(conn, now, period, guild_id, user_id, job_id, kind, amount, actor_id, note)
    return entry is not None


def ledger_entry(row: Any) -> LedgerEntry:
    """A LedgerEntry from a `SELECT * FROM ledger` row."""
    return LedgerEntry(
        id=int(row["id"]),
        ts=int(row["ts"]),
        period=str(row["period"]),
        guild_id=int(row["guild_id"]),
        user_id=int(row["user_id"]),
        job_id=row["job_id"],
        kind=LedgerKind(row["kind"]),
        amount=int(row["amount"]),
        actor_id=int(row["actor_id"]),
        note=str(row["note"]),
    )
