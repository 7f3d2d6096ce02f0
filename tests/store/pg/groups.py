"""The PostgreSQL table groups of rules, audit and meta on one test database (`groups.rules`,
`groups.audit`, `groups.meta`), and jobs and grants written in plain SQL, so that these groups
are tested without the jobs and ledger groups."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from bot.store.jobs import TERMINAL_STATES
from bot.store.postgres.audit import PgAudit
from bot.store.postgres.db import PgDatabase
from bot.store.postgres.meta import PgMeta
from bot.store.postgres.rules import PgRules
from tests.store.factories import PERIOD, FakeClock


class PgGroups:
    """The groups this part of the PostgreSQL store has, on one open database."""

    def __init__(self, db: PgDatabase) -> None:
        self.db = db
        self.rules = PgRules(db)
        self.audit = PgAudit(db)
        self.meta = PgMeta(db)


@pytest.fixture
async def groups(pg_dsn: str, clock: FakeClock) -> AsyncIterator[PgGroups]:
    db = await PgDatabase.open(pg_dsn, clock=clock, max_size=4)
    try:
        yield PgGroups(db)
    finally:
        await db.close()


async def add_job(
    db: PgDatabase,
    job_id: str,
    *,
    user_id: int,
    guild_id: int = 1,
    state: str = "delivered",
    cost: int = 20,
    inputs: tuple[str, ...] = (),
    output_path: str | None = None,
    finished_at: int | None = None,
    period: str = PERIOD,
) -> None:
    """A job as the bot leaves it, written in SQL (the jobs group is not under test here): its
    row, its reservation and, once ended, its settle (delivered) or refund (anything else)."""
    ended = state in {s.value for s in TERMINAL_STATES}
    now = db.now()
    async with db.write() as conn:
        await conn.execute(
            "INSERT INTO jobs (id, created_at, updated_at, state, mode, endpoint_id, "
            "request_json, input_hashes, cost, guild_id, channel_id, user_id, interaction_id, "
            "interaction_token, token_expires_at, video_url, output_path, output_size, seed, "
            "finished_at) VALUES ($1, $2::bigint, $2, $3, 'text', 'fal-ai/pika', "
            "$4::text::jsonb, $5::text::jsonb, $6, $7, 10, $8, 555, 'secret-token', "
            "$2::bigint + 900, $9, $10, $11, 42, $12)",
            job_id,
            now,
            state,
            json.dumps({"mode": "text", "prompt": "a cat surfing"}),
            json.dumps(list(inputs)),
            cost,
            guild_id,
            user_id,
            "https://fal.example/video.mp4" if ended else None,
            output_path,
            100 if output_path else None,
            (finished_at if finished_at is not None else now) if ended else None,
        )
        kinds = ["reserve"]
        if ended:
            kinds.append("settle" if state == "delivered" else "refund")
        for kind in kinds:
            await conn.execute(
                "INSERT INTO ledger (ts, period, guild_id, user_id, job_id, kind, amount, "
                "actor_id, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'by the bot')",
                now,
                period,
                guild_id,
                user_id,
                job_id,
                kind,
                cost,
                user_id if kind == "reserve" else 0,
            )


async def grant(
    db: PgDatabase, guild_id: int, user_id: int, amount: int, *, actor_id: int, note: str = ""
) -> None:
    """An admin's grant, as a ledger row."""
    async with db.write() as conn:
        await conn.execute(
            "INSERT INTO ledger (ts, period, guild_id, user_id, kind, amount, actor_id, note) "
            "VALUES ($1, $2, $3, $4, 'grant', $5, $6, $7)",
            db.now(),
            PERIOD,
            guild_id,
            user_id,
            amount,
            actor_id,
            note,
        )
