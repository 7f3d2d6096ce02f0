"""A server's rules on PostgreSQL: settings, allowances, blocks, allowed channels and blocked
words, and the glance the checks before a job read, in one statement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.store.jobs import UNFINISHED_STATES, quota_totals
from bot.store.postgres.audit import record
from bot.store.postgres.db import PgDatabase
from bot.store.rules import Block, Glance, GuildSettings, allowance_of, blocklist_entry

# Passed as a parameter (`= ANY($n)`), never spliced into the SQL.
_UNFINISHED = sorted(state.value for state in UNFINISHED_STATES)

# Per-role and per-member allowances; table and column names come from this literal tuple.
_LIMIT_TABLES = (("role", "role_limits", "role_id"), ("member", "member_limits", "user_id"))
_LIMIT_SUBJECT = {kind: column for kind, _, column in _LIMIT_TABLES}
_DELETE_LIMIT_SQL = {
    kind: f"DELETE FROM {table} WHERE guild_id = $1 AND {column} = $2"  # noqa: S608
    for kind, table, column in _LIMIT_TABLES
}
_SET_LIMIT_SQL = {
    kind: f"""INSERT INTO {table} (guild_id, {column}, allowance, actor_id, updated_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (guild_id, {column}) DO UPDATE SET allowance = excluded.allowance,
            actor_id = excluded.actor_id, updated_at = excluded.updated_at"""  # noqa: S608
    for kind, table, column in _LIMIT_TABLES
}

# A server's settings as seven columns of one row ($1 is the server): the lists come as
# arrays, the default models as two arrays in the same (mode) order.
_SETTINGS_COLUMNS = """
    s.daily_budget, s.default_resolution, s.audit_channel_id,
    models.modes, models.models,
    ARRAY(SELECT channel_id FROM guild_channels WHERE guild_id = $1),
    ARRAY(SELECT word FROM guild_blocklist WHERE guild_id = $1)
"""
_SETTINGS_FROM = """
FROM (SELECT 1) AS one
LEFT JOIN guild_settings AS s ON s.guild_id = $1
CROSS JOIN (
    SELECT coalesce(array_agg(mode ORDER BY mode), '{}') AS modes,
        coalesce(array_agg(model ORDER BY mode), '{}') AS models
    FROM guild_default_models WHERE guild_id = $1
) AS models
"""
_SETTINGS_SQL = f"SELECT {_SETTINGS_COLUMNS} {_SETTINGS_FROM}"

# What the checks before a job is accepted read (PgRules.glance), in ONE statement: one round
# trip inside Discord's 3 s acknowledgement, and one snapshot, so its totals agree with each
# other. $1 server, $2 member, $3 allowance day, $4 the unfinished states. The columns after
# the member's limits and the role limits are those quota_totals reads: blocked, unfinished,
# the member's day sums (reserves, settles, refunds, grants, resets, write-offs), the server's
# and the day's spend (write-offs left in: fal may have billed them).
_GLANCE_SQL = f"""
SELECT {_SETTINGS_COLUMNS},
    (SELECT allowance FROM member_limits WHERE guild_id = $1 AND user_id = $2),
    roles.ids, roles.allowances,
    EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = $1 AND user_id = $2),
    (SELECT count(*) FROM jobs WHERE user_id = $2 AND state = ANY($4::text[])),
    coalesce(m.reserves, 0), coalesce(m.settles, 0), coalesce(m.refunds, 0),
    coalesce(m.grants, 0), coalesce(m.resets, 0), coalesce(m.write_offs, 0),
    coalesce(g.reserves - g.refunds, 0), coalesce(d.reserves - d.refunds, 0)
{_SETTINGS_FROM}
CROSS JOIN (
    SELECT coalesce(array_agg(role_id ORDER BY role_id), '{{}}') AS ids,
        coalesce(array_agg(allowance ORDER BY role_id), '{{}}') AS allowances
    FROM role_limits WHERE guild_id = $1
) AS roles
LEFT JOIN ledger_member_day AS m ON m.period = $3 AND m.guild_id = $1 AND m.user_id = $2
LEFT JOIN ledger_guild_day AS g ON g.period = $3 AND g.guild_id = $1
LEFT JOIN ledger_day AS d ON d.period = $3
"""  # noqa: S608

_GUILD_COLUMN_SQL = {
    column: f"""
    INSERT INTO guild_settings (guild_id, {column}, updated_at) VALUES ($1, $2, $3)
    ON CONFLICT (guild_id) DO UPDATE SET {column} = excluded.{column},
                                         updated_at = excluded.updated_at
    """  # noqa: S608
    for column in ("daily_budget", "default_resolution", "audit_channel_id")
}


class PgRules:
    """A server's rules across their tables; every change is audited with its admin, in the
    change's own transaction."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    # Allowances

    async def set_role_limit(
        self, guild_id: int, role_id: int, allowance: int | None, *, actor_id: int
    ) -> None:
        """Set the daily allowance of members with this role; None removes the role's limit."""
        await self._set_limit("role", guild_id, role_id, allowance, actor_id=actor_id)

    async def set_member_limit(
        self, guild_id: int, user_id: int, allowance: int | None, *, actor_id: int
    ) -> None:
        """Set one member's daily allowance (it beats their roles); None removes it."""
        await self._set_limit("member", guild_id, user_id, allowance, actor_id=actor_id)

    async def _set_limit(
        self, kind: str, guild_id: int, subject_id: int, allowance: int | None, *, actor_id: int
    ) -> None:
        if allowance is not None:
            _check_allowance(allowance)
        async with self._db.write() as conn:
            if allowance is None:
                await conn.execute(_DELETE_LIMIT_SQL[kind], guild_id, subject_id)
            else:
                await conn.execute(
                    _SET_LIMIT_SQL[kind], guild_id, subject_id, allowance, actor_id, self._db.now()
                )
            await record(
                conn,
                self._db.now(),
                guild_id,
                actor_id,
                f"limit.{kind}",
                {_LIMIT_SUBJECT[kind]: subject_id, "allowance": allowance},
            )

    async def role_limits(self, guild_id: int) -> dict[int, int]:
        """Role id -> daily allowance, for every role with a limit in this server."""
        async with self._db.read() as conn:
            rows = await conn.fetch(
                "SELECT role_id, allowance FROM role_limits WHERE guild_id = $1", guild_id
            )
        return {int(r[0]): int(r[1]) for r in rows}

    async def member_limits(self, guild_id: int) -> dict[int, int]:
        """User id -> daily allowance, for every member with their own limit in this server."""
        async with self._db.read() as conn:
            rows = await conn.fetch(
                "SELECT user_id, allowance FROM member_limits WHERE guild_id = $1", guild_id
            )
        return {int(r[0]): int(r[1]) for r in rows}

    async def allowance(
        self, guild_id: int, user_id: int, role_ids: Iterable[int], default: int
    ) -> int:
        """The member's daily allowance: their own limit, else their best role's, else default."""
        async with self._db.read() as conn:
            rows = await conn.fetch(
                "SELECT 'member', user_id, allowance FROM member_limits "
                "WHERE guild_id = $1 AND user_id = $2 "
                "UNION ALL SELECT 'role', role_id, allowance FROM role_limits "
                "WHERE guild_id = $1",
                guild_id,
                user_id,
            )
        own = next((int(r[2]) for r in rows if r[0] == "member"), None)
        by_role = {int(r[1]): int(r[2]) for r in rows if r[0] == "role"}
        return allowance_of(own, by_role, role_ids, default)

    # Blocks

    async def block_member(
        self, guild_id: int, user_id: int, *, actor_id: int, reason: str = ""
    ) -> None:
        """Stop the member from generating in this server (until unblocked)."""
        async with self._db.write() as conn:
            await conn.execute(
                """
                INSERT INTO blocked_members (guild_id, user_id, actor_id, reason, created_at)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (guild_id, user_id) DO UPDATE SET actor_id = excluded.actor_id,
                    reason = excluded.reason, created_at = excluded.created_at
                """,
                guild_id,
                user_id,
                actor_id,
                reason,
                self._db.now(),
            )
            await record(
                conn,
                self._db.now(),
                guild_id,
                actor_id,
                "block",
                {"user_id": user_id, "reason": reason},
            )

    async def unblock_member(self, guild_id: int, user_id: int, *, actor_id: int) -> bool:
        """Lift a block; False if the member was not blocked."""
        async with self._db.write() as conn:
            status = await conn.execute(
                "DELETE FROM blocked_members WHERE guild_id = $1 AND user_id = $2",
                guild_id,
                user_id,
            )
            if rows_changed(status) != 1:
                return False
            await record(conn, self._db.now(), guild_id, actor_id, "unblock", {"user_id": user_id})
            return True

    async def is_blocked(self, guild_id: int, user_id: int) -> bool:
        """Whether the member is blocked in this server."""
        async with self._db.read() as conn:
            found = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = $1 "
                "AND user_id = $2)",
                guild_id,
                user_id,
            )
        return bool(found)

    async def blocked_members(self, guild_id: int) -> list[Block]:
        """Every block in this server, oldest first."""
        async with self._db.read() as conn:
            rows = await conn.fetch(
                "SELECT guild_id, user_id, actor_id, reason, created_at FROM blocked_members "
                "WHERE guild_id = $1 ORDER BY created_at, user_id",
                guild_id,
            )
        return [Block(int(r[0]), int(r[1]), int(r[2]), str(r[3]), int(r[4])) for r in rows]

    # Settings

    async def settings(self, guild_id: int) -> GuildSettings:
        """Everything this server has set (defaults where it has set nothing)."""
        async with self._db.read() as conn:
            row = await conn.fetchrow(_SETTINGS_SQL, guild_id)
        return _guild_settings(guild_id, tuple(row))

    async def glance(self, guild_id: int, user_id: int, *, period: str) -> Glance:
        """What the checks before a job is accepted need, in one statement: the server's
        settings, the member's block, limits, unfinished jobs and day's sums, and the day's
        spend. The reservation re-checks all of it under its locks (PgJobs.create)."""
        async with self._db.read() as conn:
            row = tuple(await conn.fetchrow(_GLANCE_SQL, guild_id, user_id, period, _UNFINISHED))
        own, role_ids, role_allowances = row[7:10]
        totals = quota_totals(row[10:])
        return Glance(
            settings=_guild_settings(guild_id, row[:7]),
            blocked=totals.blocked,
            own_allowance=None if own is None else int(own),
            role_allowances={
                int(role): int(limit) for role, limit in zip(role_ids, role_allowances, strict=True)
            },
            unfinished=totals.unfinished,
            day=totals.day,
            guild_spent=totals.guild_spent,
            global_spent=totals.global_spent,
        )

    async def set_daily_budget(self, guild_id: int, budget: int | None, *, actor_id: int) -> None:
        """Set this server's daily budget in credits; None goes back to the configured default."""
        if budget is not None and budget < 0:
            raise ValueError(f"a daily budget cannot be negative, not {budget}")
        await self._set_guild_column(guild_id, "daily_budget", budget, actor_id)

    async def set_default_resolution(
        self, guild_id: int, resolution: str | None, *, actor_id: int
    ) -> None:
        """Set the resolution used when a member names none; None goes back to the default."""
        await self._set_guild_column(guild_id, "default_resolution", resolution, actor_id)

    async def set_audit_channel(
        self, guild_id: int, channel_id: int | None, *, actor_id: int
    ) -> None:
        """Set the channel admin actions are posted to; None stops posting them."""
        await self._set_guild_column(guild_id, "audit_channel_id", channel_id, actor_id)

    async def _set_guild_column(
        self, guild_id: int, column: str, value: int | str | None, actor_id: int
    ) -> None:
        async with self._db.write() as conn:
            await conn.execute(_GUILD_COLUMN_SQL[column], guild_id, value, self._db.now())
            await record(
                conn, self._db.now(), guild_id, actor_id, f"settings.{column}", {column: value}
            )

    async def set_default_model(
        self, guild_id: int, mode: str, model: str | None, *, actor_id: int
    ) -> None:
        """Set the model used for `mode` when a member names none; None goes back to default."""
        async with self._db.write() as conn:
            if model is None:
                await conn.execute(
                    "DELETE FROM guild_default_models WHERE guild_id = $1 AND mode = $2",
                    guild_id,
                    str(mode),
                )
            else:
                await conn.execute(
                    """
                    INSERT INTO guild_default_models (guild_id, mode, model) VALUES ($1, $2, $3)
                    ON CONFLICT (guild_id, mode) DO UPDATE SET model = excluded.model
                    """,
                    guild_id,
                    str(mode),
                    model,
                )
            await record(
                conn,
                self._db.now(),
                guild_id,
                actor_id,
                "settings.default_model",
                {"mode": str(mode), "model": model},
            )

    # Channels and blocked words

    async def allow_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Add a channel where generation is allowed; False if it already was listed.

        While a server lists no channel, generation is allowed everywhere.
        """
        return await _change_list(
            self._db,
            "INSERT INTO guild_channels (guild_id, channel_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            guild_id,
            channel_id,
            actor_id,
            "channels.allow",
            {"channel_id": channel_id},
        )

    async def disallow_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Remove a channel from the allowed list; False if it was not listed."""
        return await _change_list(
            self._db,
            "DELETE FROM guild_channels WHERE guild_id = $1 AND channel_id = $2",
            guild_id,
            channel_id,
            actor_id,
            "channels.disallow",
            {"channel_id": channel_id},
        )

    async def clear_allowed_channels(self, guild_id: int, *, actor_id: int) -> None:
        """Empty the allowed list: generation is allowed in every channel again."""
        async with self._db.write() as conn:
            await conn.execute("DELETE FROM guild_channels WHERE guild_id = $1", guild_id)
            await record(conn, self._db.now(), guild_id, actor_id, "channels.clear", {})

    async def add_blocked_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Refuse prompts containing `word` (compared lowercased); False if already listed."""
        word = blocklist_entry(word)
        return await _change_list(
            self._db,
            "INSERT INTO guild_blocklist (guild_id, word) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            guild_id,
            word,
            actor_id,
            "blocklist.add",
            {"word": word},
        )

    async def remove_blocked_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Stop refusing `word`; False if it was not listed."""
        word = blocklist_entry(word)
        return await _change_list(
            self._db,
            "DELETE FROM guild_blocklist WHERE guild_id = $1 AND word = $2",
            guild_id,
            word,
            actor_id,
            "blocklist.remove",
            {"word": word},
        )


def rows_changed(status: str) -> int:
    """How many rows a statement changed, from asyncpg's command tag ("DELETE 1",
    "INSERT 0 1", "UPDATE 3")."""
    _, _, count = status.rpartition(" ")
    return int(count) if count.isdigit() else 0


async def _change_list(
    database: PgDatabase,
    sql: str,
    guild_id: int,
    item: int | str,
    actor_id: int,
    action: str,
    details: Mapping[str, object],
) -> bool:
    """Add to or take from one of the server's lists; audited only when it changed.

    Two admins adding the same channel at once: ON CONFLICT DO NOTHING makes the second
    insert wait for the first and then change nothing, so exactly one of them is audited.
    """
    async with database.write() as conn:
        changed = rows_changed(await conn.execute(sql, guild_id, item)) == 1
        if changed:
            await record(conn, database.now(), guild_id, actor_id, action, details)
        return changed


def _guild_settings(guild_id: int, row: Sequence[Any]) -> GuildSettings:
    budget, resolution, audit_channel, modes, models, channels, words = row
    return GuildSettings(
        guild_id=guild_id,
        daily_budget=None if budget is None else int(budget),
        default_resolution=resolution,
        audit_channel_id=None if audit_channel is None else int(audit_channel),
        default_models={str(mode): str(model) for mode, model in zip(modes, models, strict=True)},
        allowed_channels=frozenset(int(channel) for channel in channels),
        # Sorted here by code point, as the SQLite store sorts, whatever the database's collation.
        blocklist=tuple(sorted(str(word) for word in words)),
    )


def _check_allowance(allowance: int) -> None:
    if allowance < 0:
        raise ValueError(f"an allowance cannot be negative, not {allowance}")
