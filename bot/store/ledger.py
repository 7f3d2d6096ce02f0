"""The credit ledger: entry kinds, balances, spend summaries, allowance days, and the table group
that appends and sums its rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import aiosqlite

from bot.store.audit import record
from bot.store.db import Database, fetchone, scalar


class LedgerKind(StrEnum):
    """What a ledger row records."""

    RESERVE = "reserve"  # a job was accepted: its cost is held
    SETTLE = "settle"  # the job delivered: the hold becomes a charge
    REFUND = "refund"  # the job ended without a video and fal surely never billed it
    # The job ended without a video, but fal may have run it and billed the operator (an
    # unknown submit, a run fal never finished or whose video could not be fetched): the member
    # gets the credits back in full, as with a refund, but the server's and the day's spend
    # keep counting them, so the budgets cap what fal may bill, not only what is held.
    WRITE_OFF = "write_off"
    GRANT = "grant"  # an admin gave one-off credits for the day
    RESET = "reset"  # an admin reset the member: credits back what was used so far


# The ways a job's reservation ends (once): charged, given back, or given back and written off.
ENDINGS = frozenset({LedgerKind.SETTLE, LedgerKind.REFUND, LedgerKind.WRITE_OFF})


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One append-only ledger row."""

    id: int
    ts: int
    period: str
    guild_id: int
    user_id: int
    job_id: str | None
    kind: LedgerKind
    amount: int
    actor_id: int  # the member, the admin, or 0 for the bot itself
    note: str


@dataclass(frozen=True, slots=True)
class Balance:
    """A member's credits in one server for one allowance day.

    used = reserves - refunds - write_offs; reserved = reserves - settles - refunds -
    write_offs (still held by unfinished jobs); granted = grants + resets;
    left = allowance + granted - used. A write-off is the member's as much as a refund is.
    """

    allowance: int
    granted: int
    used: int
    reserved: int
    left: int


@dataclass(frozen=True, slots=True)
class DayTotals:
    """The sums of a member's ledger rows in one server on one allowance day, by kind."""

    reserves: int = 0
    settles: int = 0
    refunds: int = 0
    grants: int = 0
    resets: int = 0
    write_offs: int = 0

    def balance(self, allowance: int) -> Balance:
        """The member's balance for that day, given their daily allowance."""
        used = self.reserves - self.refunds - self.write_offs
        granted = self.grants + self.resets
        return Balance(
            allowance=allowance,
            granted=granted,
            used=used,
            reserved=self.reserves - self.settles - self.refunds - self.write_offs,
            left=allowance + granted - used,
        )


@dataclass(frozen=True, slots=True)
class DaySpend:
    """What a server spent on one allowance day."""

    period: str
    spent: int  # reserves - refunds: held, charged, and written off (fal may have billed)
    settled: int  # charged for delivered videos
    refunded: int
    jobs: int  # reservations taken
    written_off: int = 0  # given back to members, but fal may have billed it


@dataclass(frozen=True, slots=True)
class MemberSpend:
    """What one member spent in a server on one allowance day."""

    user_id: int
    spent: int  # what counted against the member: refunds and write-offs came back to them
    jobs: int


def allowance_period(now: float, reset_hour: int = 0) -> str:
    """The allowance day that `now` (epoch seconds) falls in, as "YYYY-MM-DD".

    A day runs from `reset_hour`:00 UTC to the same hour the next day and is named after the
    date it starts on, so with reset_hour=6, 05:59 UTC on the 22nd still counts on the 21st.
    """
    _check_reset_hour(reset_hour)
    shifted = datetime.fromtimestamp(now, UTC) - timedelta(hours=reset_hour)
    return shifted.date().isoformat()


def next_reset(now: float, reset_hour: int = 0) -> int:
    """Epoch seconds of the next allowance reset strictly after `now`."""
    _check_reset_hour(reset_hour)
    start = datetime.fromisoformat(allowance_period(now, reset_hour)).replace(tzinfo=UTC)
    return int((start + timedelta(days=1, hours=reset_hour)).timestamp())


def _check_reset_hour(reset_hour: int) -> None:
    if not 0 <= reset_hour <= 23:
        raise ValueError(f"reset_hour must be 0 to 23, not {reset_hour}")


# Reads of the running sums migration 0005 keeps (never SUMs over the day's ledger rows).
# A server's and the day's spend leave write-offs in (fal may have billed them); a member's
# balance (DayTotals) takes them out.
TOTALS_SQL = """
SELECT COALESCE(m.reserves, 0), COALESCE(m.settles, 0), COALESCE(m.refunds, 0),
    COALESCE(m.grants, 0), COALESCE(m.resets, 0), COALESCE(m.write_offs, 0),
    COALESCE(g.reserves - g.refunds, 0), COALESCE(d.reserves - d.refunds, 0)
FROM (SELECT 1)
LEFT JOIN ledger_member_day AS m
    ON m.period = :period AND m.guild_id = :guild AND m.user_id = :user
LEFT JOIN ledger_guild_day AS g ON g.period = :period AND g.guild_id = :guild
LEFT JOIN ledger_day AS d ON d.period = :period
"""
_GUILD_SPEND_SQL = (
    "SELECT reserves - refunds FROM ledger_guild_day WHERE period = ? AND guild_id = ?"
)
_GLOBAL_SPEND_SQL = "SELECT reserves - refunds FROM ledger_day WHERE period = ?"
# What counted against a member: write-offs came back to them, like refunds.
_SPENT = (
    "COALESCE(SUM(CASE kind WHEN 'reserve' THEN amount "
    "WHEN 'refund' THEN -amount WHEN 'write_off' THEN -amount END), 0)"
)
_TOP_MEMBERS_SQL = f"""
SELECT user_id, {_SPENT} AS spent, COUNT(CASE WHEN kind = 'reserve' THEN 1 END)
FROM ledger WHERE guild_id = ? AND period = ?
GROUP BY user_id HAVING spent > 0 ORDER BY spent DESC, user_id LIMIT ?
"""  # noqa: S608

INSERT_LEDGER_SQL = """
INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, actor_id, note)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
RETURNING *
"""


class SqliteLedger:
    """The append-only `ledger` table and the running sums its triggers keep."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def balance(self, guild_id: int, user_id: int, *, period: str, allowance: int) -> Balance:
        """The member's credits in this server for the allowance day `period`."""
        async with self._db.read() as db:
            totals = await _day_totals(db, guild_id, user_id, period)
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

        Only settled credits come back: credits still held by unfinished jobs return through
        their own refund if those jobs fail (crediting them now too would pay them twice).
        Afterwards the member has their full allowance (plus grants) again for that day, less
        what is still held. The row is written even when there was nothing to credit, so the
        reset is on record.
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
        async with self._db.write() as db:
            amount = amount_of(await _day_totals(db, guild_id, user_id, period))
            entry = await _append(
                db,
                self._db.now(),
                period,
                guild_id,
                user_id,
                None,
                kind,
                amount,
                actor_id,
                note,
            )
            await record(db, self._db.now(), guild_id, actor_id, kind.value, audit(amount))
        assert entry is not None
        return entry

    async def for_member(
        self, guild_id: int, user_id: int, *, period: str | None = None
    ) -> list[LedgerEntry]:
        """The member's ledger rows in this server, oldest first; one day only when given."""
        async with self._db.read() as db:
            if period is None:
                rows = await db.execute_fetchall(
                    "SELECT * FROM ledger WHERE guild_id = ? AND user_id = ? ORDER BY id",
                    (guild_id, user_id),
                )
            else:
                rows = await db.execute_fetchall(
                    "SELECT * FROM ledger WHERE guild_id = ? AND user_id = ? AND period = ? "
                    "ORDER BY id",
                    (guild_id, user_id, period),
                )
        return [_ledger_entry(row) for row in rows]

    async def for_job(self, job_id: str) -> list[LedgerEntry]:
        """The ledger rows of one job, oldest first."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(
                "SELECT * FROM ledger WHERE job_id = ? ORDER BY id", (job_id,)
            )
        return [_ledger_entry(row) for row in rows]

    async def guild_spend(self, guild_id: int, period: str) -> int:
        """Credits held or charged in this server on the allowance day `period`."""
        async with self._db.read() as db:
            return int(await scalar(db, _GUILD_SPEND_SQL, (period, guild_id)) or 0)

    async def global_spend(self, period: str) -> int:
        """Credits held or charged across all servers on the allowance day `period`."""
        async with self._db.read() as db:
            return int(await scalar(db, _GLOBAL_SPEND_SQL, (period,)) or 0)

    async def spend_per_day(self, guild_id: int, *, days: int = 7) -> list[DaySpend]:
        """The server's spend on its last `days` allowance days with any activity, newest first."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(
                """
                SELECT period,
                    COALESCE(SUM(CASE kind WHEN 'reserve' THEN amount
                                           WHEN 'refund' THEN -amount END), 0),
                    COALESCE(SUM(CASE WHEN kind = 'settle' THEN amount END), 0),
                    COALESCE(SUM(CASE WHEN kind = 'refund' THEN amount END), 0),
                    COUNT(CASE WHEN kind = 'reserve' THEN 1 END),
                    COALESCE(SUM(CASE WHEN kind = 'write_off' THEN amount END), 0)
                FROM ledger
                WHERE guild_id = ? AND kind IN ('reserve', 'settle', 'refund', 'write_off')
                GROUP BY period ORDER BY period DESC LIMIT ?
                """,
                (guild_id, days),
            )
        return [
            DaySpend(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows
        ]

    async def top_members(self, guild_id: int, period: str, *, limit: int = 5) -> list[MemberSpend]:
        """The members who spent most in this server on `period`, biggest first."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(_TOP_MEMBERS_SQL, (guild_id, period, limit))
        return [MemberSpend(int(r[0]), int(r[1]), int(r[2])) for r in rows]


async def _day_totals(
    db: aiosqlite.Connection, guild_id: int, user_id: int, period: str
) -> DayTotals:
    rows = await db.execute_fetchall(
        TOTALS_SQL, {"guild": guild_id, "user": user_id, "period": period}
    )
    *sums, _, _ = (int(v) for v in next(iter(rows)))
    return DayTotals(*sums)


async def _append(
    db: aiosqlite.Connection,
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
    row = await fetchone(
        db,
        INSERT_LEDGER_SQL,
        (ts, period, guild_id, user_id, job_id, kind.value, amount, actor_id, note),
    )
    return None if row is None else _ledger_entry(row)


async def end_reservation(
    db: aiosqlite.Connection,
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
    reserve = await fetchone(
        db,
        "SELECT period, guild_id, user_id, amount FROM ledger "
        "WHERE job_id = ? AND kind = 'reserve'",
        (job_id,),
    )
    if reserve is None:
        return False
    period, guild_id, user_id, amount = reserve
    entry = await _append(db, now, period, guild_id, user_id, job_id, kind, amount, actor_id, note)
    return entry is not None


def _ledger_entry(row: Any) -> LedgerEntry:
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
