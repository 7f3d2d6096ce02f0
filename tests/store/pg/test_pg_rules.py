"""PostgreSQL's rules, audit and meta groups beyond the store suite they share with SQLite
(tests/store/test_store_settings.py runs on both): the audit's jsonb read back as SQLite's
text, a change and its audit entry in one transaction, concurrent admins, and the glance (one
statement, the same answers as the separate reads)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from bot.store.ledger import DayTotals
from bot.store.postgres.db import PgDatabase
from bot.store.rules import Glance
from tests.store.factories import PERIOD, FakeClock

from .groups import PgGroups, add_job, grant, groups

__all__ = ["groups"]

GUILD, ADMIN = 1, 7


async def test_audit_details_read_back_as_the_sqlite_store_writes_them(groups: PgGroups) -> None:
    # jsonb reorders keys (shortest first) and respaces; the entry gives SQLite's text back.
    details = {"reason": "spam", "user_id": 100, "ñ": [1, None], "a": {"z": 1, "b": True}}
    entry = await groups.audit.add(GUILD, ADMIN, "block", details)
    assert entry.details_json == (
        '{"a": {"b": true, "z": 1}, "reason": "spam", "user_id": 100, "\\u00f1": [1, null]}'
    )
    assert entry.details == details
    assert await groups.audit.log(GUILD) == [entry]


async def test_the_schema_version_is_the_newest_migration(groups: PgGroups) -> None:
    assert await groups.meta.schema_version() == 3


async def test_a_change_and_its_audit_entry_commit_together(groups: PgGroups) -> None:
    await groups.audit.add(GUILD, ADMIN, "first")
    # A budget the schema refuses (CHECK daily_budget >= 0, bypassing the store's own check)
    # rolls back the audit entry written in the same transaction.
    with pytest.raises(asyncpg.CheckViolationError):
        await groups.rules._set_guild_column(GUILD, "daily_budget", -5, ADMIN)
    assert [e.action for e in await groups.audit.log(GUILD)] == ["first"]


async def test_a_blocked_word_is_a_parameter_never_sql(groups: PgGroups) -> None:
    word = "x'); drop table guild_blocklist; --"
    assert await groups.rules.add_blocked_word(GUILD, word, actor_id=ADMIN)
    assert (await groups.rules.settings(GUILD)).blocklist == (word,)


# -- the glance --------------------------------------------------------------------------


async def test_the_glance_answers_what_the_separate_reads_answer(groups: PgGroups) -> None:
    rules, db = groups.rules, groups.db
    await rules.set_daily_budget(1, 400, actor_id=1)
    await rules.set_default_resolution(1, "1080p", actor_id=1)
    await rules.set_default_model(1, "text", "2.2", actor_id=1)
    await rules.set_default_model(1, "animate", "2.1", actor_id=1)
    await rules.allow_channel(1, 10, actor_id=1)
    await rules.add_blocked_word(1, "Zebra", actor_id=1)
    await rules.add_blocked_word(1, "apple", actor_id=1)
    await rules.set_role_limit(1, 7, 150, actor_id=1)
    await rules.set_role_limit(1, 8, 60, actor_id=1)
    await add_job(db, "refunded", user_id=100, cost=45, state="failed")
    await add_job(db, "elsewhere", user_id=200, guild_id=2, cost=20, state="queued")
    await add_job(db, "running1", user_id=100, cost=10, state="running")
    await add_job(db, "running2", user_id=100, cost=0, state="queued")
    await add_job(db, "yonder", user_id=100, guild_id=3, cost=7, state="submitted")
    await add_job(db, "settled", user_id=100, cost=4, state="delivered")
    await grant(db, 1, 100, 5, actor_id=1)

    glance = await rules.glance(1, 100, period=PERIOD)
    assert glance.settings == await rules.settings(1)
    assert glance.settings.blocklist == ("apple", "zebra")
    assert glance.settings.allowed_channels == frozenset({10})
    assert glance.settings.default_models == {"animate": "2.1", "text": "2.2"}
    assert (glance.settings.daily_budget, glance.settings.default_resolution) == (400, "1080p")
    assert glance.blocked is False
    assert glance.unfinished == 3  # in every server; the refunded and settled ones ended
    assert glance.own_allowance is None
    assert dict(glance.role_allowances) == await rules.role_limits(1) == {7: 150, 8: 60}
    assert glance.allowance([7, 8], 100) == await rules.allowance(1, 100, [7, 8], 100) == 150
    assert glance.day == DayTotals(reserves=59, settles=4, refunds=45, grants=5)
    assert glance.guild_spent == 14  # reserves less refunds in server 1
    assert glance.global_spent == 41

    await rules.set_member_limit(1, 100, 3, actor_id=1)
    await rules.block_member(1, 100, actor_id=1)
    glance = await rules.glance(1, 100, period=PERIOD)
    assert glance.blocked is True
    assert glance.own_allowance == 3
    assert glance.allowance([7], 100) == 3


async def test_the_glance_of_a_server_that_set_nothing(groups: PgGroups) -> None:
    glance = await groups.rules.glance(9, 900, period=PERIOD)
    assert glance == Glance(
        settings=await groups.rules.settings(9),
        blocked=False,
        own_allowance=None,
        role_allowances={},
        unfinished=0,
        day=DayTotals(),
        guild_spent=0,
        global_spent=0,
    )


async def test_the_glance_is_one_statement(pg_dsn: str, clock: FakeClock) -> None:
    # One pool connection, so the glance runs on the one whose queries are logged here.
    db = await PgDatabase.open(pg_dsn, clock=clock, min_size=1, max_size=1)
    try:
        rules = PgGroups(db).rules
        await rules.set_role_limit(1, 7, 150, actor_id=1)
        # The first glance on a connection also prepares it (asyncpg asks the server about
        # its types once); from then on the prepared statement is reused.
        await rules.glance(1, 100, period=PERIOD)
        sent: list[str] = []
        async with db.read() as conn:
            conn.add_query_logger(lambda query: sent.append(query.query))
        sent.clear()
        await rules.glance(1, 100, period=PERIOD)
    finally:
        await db.close()
    # The glance, and nothing else but the pool's reset of the connection on its release.
    statements = [sql for sql in sent if "RESET ALL" not in sql]
    assert len(statements) == 1, sent
    assert "ledger_member_day" in statements[0]


async def test_the_glance_sees_a_commit_from_another_process_at_once(
    pg_dsn: str, clock: FakeClock
) -> None:
    reader = await PgDatabase.open(pg_dsn, clock=clock)
    writer = await PgDatabase.open(pg_dsn, clock=clock)
    try:
        rules, other = PgGroups(reader).rules, PgGroups(writer).rules
        assert (await rules.glance(1, 100, period=PERIOD)).guild_spent == 0
        await add_job(writer, "fresh", user_id=100, cost=25, state="queued")
        await other.block_member(1, 100, actor_id=1)
        await other.add_blocked_word(1, "owl", actor_id=1)
        glance = await rules.glance(1, 100, period=PERIOD)
        assert (glance.guild_spent, glance.unfinished, glance.blocked) == (25, 1, True)
        assert glance.settings.blocklist == ("owl",)
    finally:
        await writer.close()
        await reader.close()


async def test_two_admins_adding_one_channel_at_once_audit_it_once(
    pg_dsn: str, clock: FakeClock
) -> None:
    first = await PgDatabase.open(pg_dsn, clock=clock)
    second = await PgDatabase.open(pg_dsn, clock=clock)
    try:
        one, other = PgGroups(first), PgGroups(second)
        added = await asyncio.gather(
            *(
                side.rules.allow_channel(1, 50, actor_id=actor)
                for actor in range(10)
                for side in (one, other)
            )
        )
        assert sorted(added) == [False] * 19 + [True]
        assert [e.action for e in await one.audit.log(1)] == ["channels.allow"]
        assert (await other.rules.settings(1)).allowed_channels == {50}
    finally:
        await second.close()
        await first.close()
