"""PostgreSQL's forgetting of a member and its retention bound on jobs (PgMeta), as the SQLite
store's (tests/jobs/test_retention.py, tests/store/test_store_totals.py): jobs scrubbed, ledger
rows anonymised with every sum intact, and a job ending meanwhile kept consistent."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from bot.store.postgres.db import PgDatabase
from tests.store.factories import PERIOD, T0, FakeClock

from .groups import PgGroups, add_job, grant, groups

__all__ = ["groups"]

GUILD, OTHER_GUILD = 1, 2
MEMBER, NEIGHBOUR, ADMIN = 100, 200, 300
DAY = 24 * 3600

_SUMS = """
SELECT period, guild_id, user_id, reserves, settles, refunds, write_offs, grants, resets
FROM ledger_member_day ORDER BY 1, 2, 3
"""
_RECOMPUTED = """
SELECT period, guild_id, user_id,
    sum(amount) FILTER (WHERE kind = 'reserve'), sum(amount) FILTER (WHERE kind = 'settle'),
    sum(amount) FILTER (WHERE kind = 'refund'), sum(amount) FILTER (WHERE kind = 'write_off'),
    sum(amount) FILTER (WHERE kind = 'grant'), sum(amount) FILTER (WHERE kind = 'reset')
FROM ledger GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


async def job_row(groups: PgGroups, job_id: str) -> asyncpg.Record:
    async with groups.db.read() as conn:
        row = await conn.fetchrow(
            "SELECT user_id, guild_id, state, cost, request_json::text, input_hashes::text, "
            "interaction_id, interaction_token, video_url, output_path, seed "
            "FROM jobs WHERE id = $1",
            job_id,
        )
    assert row is not None
    return row


async def sums_hold(groups: PgGroups) -> bool:
    """Whether the member day totals are exactly the ledger's sums (empty kinds as 0)."""
    async with groups.db.read() as conn:
        kept = [tuple(r) for r in await conn.fetch(_SUMS)]
        recomputed = [tuple(v or 0 for v in r) for r in await conn.fetch(_RECOMPUTED)]
    return kept == recomputed


async def scalar(groups: PgGroups, sql: str, *args: object) -> Any:
    async with groups.db.read() as conn:
        return await conn.fetchval(sql, *args)


# -- forgetting a member -----------------------------------------------------------------


async def test_forgetting_scrubs_the_members_finished_jobs(groups: PgGroups) -> None:
    await add_job(groups.db, "delivered", user_id=MEMBER, inputs=("own",), output_path="/v/d.mp4")
    await add_job(groups.db, "failed", user_id=MEMBER, state="failed")
    forgotten = await groups.meta.forget_member(GUILD, MEMBER)
    assert set(forgotten.job_ids) == {"delivered", "failed"}
    assert forgotten.output_paths == ("/v/d.mp4",)
    assert forgotten.orphaned_inputs == ("own",)
    assert forgotten.unfinished == 0
    for job_id in ("delivered", "failed"):
        row = await job_row(groups, job_id)
        assert row["user_id"] == 0
        assert (row["request_json"], row["input_hashes"]) == ("{}", "[]")
        assert row["interaction_id"] is row["interaction_token"] is None
        assert row["video_url"] is row["output_path"] is row["seed"] is None
    assert await sums_hold(groups)


async def test_inputs_other_jobs_still_use_are_kept(groups: PgGroups) -> None:
    await add_job(groups.db, "mine", user_id=MEMBER, inputs=("shared", "lone"))
    await add_job(groups.db, "theirs", user_id=NEIGHBOUR, inputs=("shared",))
    forgotten = await groups.meta.forget_member(GUILD, MEMBER)
    assert forgotten.orphaned_inputs == ("lone",)


async def test_unfinished_jobs_and_other_servers_are_left_alone(groups: PgGroups) -> None:
    await add_job(groups.db, "running", user_id=MEMBER, state="running", inputs=("in",))
    await add_job(groups.db, "elsewhere", user_id=MEMBER, guild_id=OTHER_GUILD)
    forgotten = await groups.meta.forget_member(GUILD, MEMBER)
    assert (forgotten.job_ids, forgotten.unfinished, forgotten.ledger_rows) == ((), 1, 0)
    assert forgotten.orphaned_inputs == ()
    assert (await job_row(groups, "running"))["user_id"] == MEMBER
    assert (await job_row(groups, "elsewhere"))["user_id"] == MEMBER
    # The running job can still end normally: its refund matches its untouched reservation.
    async with groups.db.write() as conn:
        await conn.execute(
            "INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, actor_id) "
            "VALUES ($1, $2, $3, $4, 'running', 'refund', 20, 0)",
            T0,
            PERIOD,
            GUILD,
            MEMBER,
        )
    assert await sums_hold(groups)


async def test_ledger_rows_are_anonymised_and_every_sum_still_holds(groups: PgGroups) -> None:
    db = groups.db
    await add_job(db, "settled", user_id=MEMBER)
    await add_job(db, "refunded", user_id=MEMBER, state="failed")
    await add_job(db, "neighbours", user_id=NEIGHBOUR)
    await grant(db, GUILD, MEMBER, 30, actor_id=ADMIN, note="for a contest")
    await grant(db, GUILD, NEIGHBOUR, 5, actor_id=MEMBER, note="from the member")
    await groups.rules.block_member(GUILD, MEMBER, actor_id=ADMIN, reason="spam")
    await groups.rules.block_member(OTHER_GUILD, MEMBER, actor_id=ADMIN)
    await groups.rules.block_member(GUILD, NEIGHBOUR, actor_id=ADMIN)
    spend = "SELECT reserves - refunds FROM ledger_guild_day WHERE guild_id = $1"
    guild_before = await scalar(groups, spend, GUILD)

    forgotten = await groups.meta.forget_member(GUILD, MEMBER)

    assert forgotten.ledger_rows == 5  # two reserves, a settle, a refund, the grant
    assert forgotten.audit_rows == 1  # the block in this server, not the other's
    assert await scalar(groups, "SELECT count(*) FROM ledger WHERE user_id = $1", MEMBER) == 0
    acted = "SELECT count(*) FROM ledger WHERE actor_id = $1 AND user_id <> $2"
    assert await scalar(groups, acted, MEMBER, NEIGHBOUR) == 0
    rows = await scalar(groups, "SELECT array_agg(DISTINCT actor_id) FROM ledger WHERE user_id = 0")
    assert sorted(rows) == [0, ADMIN]
    notes = "SELECT note FROM ledger WHERE kind = 'grant' AND user_id = $1"
    assert await scalar(groups, notes, 0) == ""
    # The neighbour's rows are theirs and stay as they were (as on SQLite), the member's
    # grant to them included.
    assert await scalar(groups, notes, NEIGHBOUR) == "from the member"
    assert await scalar(groups, spend, GUILD) == guild_before
    member_sums = "SELECT count(*) FROM ledger_member_day WHERE user_id = $1"
    assert await scalar(groups, member_sums, MEMBER) == 0
    assert await sums_hold(groups)
    log = await groups.audit.log(GUILD)
    assert all('"user_id": 100' not in entry.details_json for entry in log)
    assert [e.details["user_id"] for e in log if e.action == "block"] == [NEIGHBOUR, 0]
    [elsewhere] = await groups.audit.log(OTHER_GUILD)
    assert elsewhere.details["user_id"] == MEMBER


async def test_forgetting_twice_changes_nothing_more(groups: PgGroups) -> None:
    await add_job(groups.db, "settled", user_id=MEMBER, output_path="/v/s.mp4")
    await groups.meta.forget_member(GUILD, MEMBER)
    again = await groups.meta.forget_member(GUILD, MEMBER)
    assert (again.job_ids, again.output_paths, again.ledger_rows, again.audit_rows) == (
        (),
        (),
        0,
        0,
    )


async def test_the_anonymous_member_cannot_be_forgotten(groups: PgGroups) -> None:
    with pytest.raises(ValueError, match="anonymous"):
        await groups.meta.forget_member(GUILD, 0)


async def test_a_job_ending_while_its_member_is_forgotten_ends_first(
    groups: PgGroups, pg_dsn: str
) -> None:
    # The job's ending holds its row; the forgetting waits for it, then sees the job ended
    # and scrubs it with its settle: nothing is left half-forgotten.
    await add_job(groups.db, "ending", user_id=MEMBER, state="running", output_path="/v/e.mp4")
    ender = await asyncpg.connect(pg_dsn)
    try:
        ending = ender.transaction()
        await ending.start()
        await ender.execute(
            "UPDATE jobs SET state = 'delivered', finished_at = $1 WHERE id = 'ending'", T0
        )
        await ender.execute(
            "INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, actor_id) "
            "VALUES ($1, $2, $3, $4, 'ending', 'settle', 20, 0)",
            T0,
            PERIOD,
            GUILD,
            MEMBER,
        )
        forgetting = asyncio.create_task(groups.meta.forget_member(GUILD, MEMBER))
        await _until_someone_waits_for_a_lock(ender)
        assert not forgetting.done()
        await ending.commit()
        forgotten = await forgetting
    finally:
        await ender.close()
    assert (forgotten.job_ids, forgotten.unfinished) == (("ending",), 0)
    assert forgotten.output_paths == ("/v/e.mp4",)
    assert forgotten.ledger_rows == 2
    assert (await job_row(groups, "ending"))["user_id"] == 0
    assert await sums_hold(groups)


async def test_a_new_job_naming_a_forgotten_one_as_parent_does_not_hold_up_forgetting(
    groups: PgGroups, pg_dsn: str
) -> None:
    # The new job's foreign key check holds its parent's row (FOR KEY SHARE) until it commits;
    # the forgetting's row locks must not wait for that (nor deadlock on the totals with it).
    await add_job(groups.db, "parent", user_id=MEMBER)
    creator = await asyncpg.connect(pg_dsn)
    try:
        creating = creator.transaction()
        await creating.start()
        await creator.execute(
            "INSERT INTO jobs (id, created_at, updated_at, state, mode, endpoint_id, "
            "request_json, cost, guild_id, channel_id, user_id, parent_job_id) "
            "VALUES ('child', $1, $1, 'queued', 'text', 'e', '{}', 0, $2, 10, $3, 'parent')",
            T0,
            GUILD,
            NEIGHBOUR,
        )
        forgotten = await asyncio.wait_for(groups.meta.forget_member(GUILD, MEMBER), 10)
        await creating.commit()
    finally:
        await creator.close()
    assert forgotten.job_ids == ("parent",)


async def _until_someone_waits_for_a_lock(conn: asyncpg.Connection) -> None:
    """Return once another backend of this database waits on a lock: the server is asked,
    since the event happens there, for at most 10 s."""
    for _ in range(1000):
        if await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock')"
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no backend came to wait for the job's row lock")


# -- the retention bound on jobs ---------------------------------------------------------


async def test_a_job_finished_past_the_bound_loses_its_prompt_and_personal_data(
    groups: PgGroups, clock: FakeClock
) -> None:
    db = groups.db
    await add_job(db, "old", user_id=MEMBER, inputs=("own",), output_path="/v/old.mp4")
    clock.now = T0 + 29 * DAY
    await add_job(db, "recent", user_id=NEIGHBOUR, output_path="/v/recent.mp4")
    ledger = "SELECT array_agg((kind, amount, user_id)::text ORDER BY id) FROM ledger"
    ledger_before = await scalar(groups, ledger)
    clock.now = T0 + 31 * DAY

    expired = await groups.meta.expire_jobs(T0 + DAY)

    assert (expired.jobs, expired.output_paths, expired.orphaned_inputs) == (
        1,
        ("/v/old.mp4",),
        ("own",),
    )
    row = await job_row(groups, "old")
    assert (row["request_json"], row["input_hashes"]) == ("{}", "[]")
    assert row["interaction_id"] is row["interaction_token"] is None
    assert row["video_url"] is row["output_path"] is row["seed"] is None
    # The row stays for the ledger and the member's history; no amount moved.
    assert (row["user_id"], row["guild_id"], row["state"], row["cost"]) == (
        MEMBER,
        GUILD,
        "delivered",
        20,
    )
    assert await scalar(groups, ledger) == ledger_before
    assert (await job_row(groups, "recent"))["output_path"] == "/v/recent.mp4"
    assert (await groups.meta.expire_jobs(T0 + DAY)).jobs == 0  # nothing left to clear


async def test_unfinished_jobs_keep_everything_however_old(
    groups: PgGroups, clock: FakeClock
) -> None:
    await add_job(groups.db, "running", user_id=MEMBER, state="running")
    await add_job(groups.db, "waiting", user_id=NEIGHBOUR, state="downloaded", output_path="/v/w")
    clock.now = T0 + 400 * DAY
    expired = await groups.meta.expire_jobs(T0 + 399 * DAY)
    assert expired.jobs == 0
    assert (await job_row(groups, "waiting"))["output_path"] == "/v/w"
    assert (await job_row(groups, "running"))["request_json"] != "{}"


async def test_inputs_a_younger_job_still_uses_are_kept(groups: PgGroups, clock: FakeClock) -> None:
    await add_job(groups.db, "first", user_id=MEMBER, inputs=("shared", "lone"))
    clock.now = T0 + 20 * DAY
    await add_job(groups.db, "second", user_id=MEMBER, inputs=("shared",))
    expired = await groups.meta.expire_jobs(T0 + DAY)
    assert (expired.jobs, expired.orphaned_inputs) == (1, ("lone",))


async def test_two_processes_expiring_at_once_clear_each_job_once(
    groups: PgGroups, pg_dsn: str, clock: FakeClock
) -> None:
    for n in range(40):
        await add_job(groups.db, f"job{n}", user_id=MEMBER, output_path=f"/v/{n}.mp4")
    clock.now = T0 + 31 * DAY
    other = await PgDatabase.open(pg_dsn, clock=clock)
    try:
        first, second = await asyncio.gather(
            groups.meta.expire_jobs(T0 + DAY), PgGroups(other).meta.expire_jobs(T0 + DAY)
        )
    finally:
        await other.close()
    assert first.jobs + second.jobs == 40
    assert sorted(first.output_paths + second.output_paths) == sorted(
        f"/v/{n}.mp4" for n in range(40)
    )
