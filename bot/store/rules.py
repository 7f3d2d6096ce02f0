"""A server's rules: its settings, allowances, blocks, allowed channels and blocked words, the
glance the checks before a job read, and the table group that keeps them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.store.audit import record
from bot.store.db import Database, exists
from bot.store.errors import InvalidBlockedWord
from bot.store.jobs import RESERVE_CHECKS_SQL, quota_totals
from bot.store.ledger import DayTotals


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """A server's own settings; None means "use the bot's configured default"."""

    guild_id: int
    daily_budget: int | None = None
    default_resolution: str | None = None
    audit_channel_id: int | None = None
    default_models: dict[str, str] = field(default_factory=dict)  # mode -> model label
    allowed_channels: frozenset[int] = frozenset()  # empty: generation allowed everywhere
    blocklist: tuple[str, ...] = ()  # lowercased words refused in prompts, sorted

    def channel_allowed(self, channel_id: int) -> bool:
        """Whether generation is allowed in this channel."""
        return not self.allowed_channels or channel_id in self.allowed_channels


@dataclass(frozen=True, slots=True)
class Glance:
    """Everything the checks before a job is accepted read, taken in one read of the store."""

    settings: GuildSettings
    blocked: bool
    own_allowance: int | None  # the member's own limit in this server, if an admin set one
    role_allowances: Mapping[int, int]  # role id -> allowance, every role limit in this server
    unfinished: int  # the member's unfinished jobs in every server
    day: DayTotals  # the member's ledger sums in this server for the day asked about
    guild_spent: int  # held or charged in this server that day
    global_spent: int  # held or charged across all servers that day

    def allowance(self, role_ids: Iterable[int], default: int) -> int:
        """The member's allowance: their own limit, else their best role's, else `default`."""
        return allowance_of(self.own_allowance, self.role_allowances, role_ids, default)


MAX_BLOCKED_WORD = 100


def allowance_of(
    own: int | None, role_allowances: Mapping[int, int], role_ids: Iterable[int], default: int
) -> int:
    """The one allowance rule: the member's own limit, else the highest limit among their
    roles, else `default`."""
    if own is not None:
        return own
    limits = [role_allowances[role] for role in role_ids if role in role_allowances]
    return max(limits) if limits else default


def fold_text(text: str) -> str:
    """Text as blocked words are stored and matched: runs of whitespace made one space, ends
    trimmed, casefolded (so "Straße" and "STRASSE" are one word, and so are "bad  word" and
    "bad word")."""
    return " ".join(text.split()).casefold()


def blocklist_entry(word: str) -> str:
    """The one rule for a blocked word as stored and compared: `fold_text`, never empty, at
    most MAX_BLOCKED_WORD characters."""
    cleaned = fold_text(word)
    if not cleaned:
        raise InvalidBlockedWord("A blocked word can't be empty.")
    if len(cleaned) > MAX_BLOCKED_WORD:
        raise InvalidBlockedWord(f"A blocked word can be at most {MAX_BLOCKED_WORD} characters.")
    return cleaned


@dataclass(frozen=True, slots=True)
class Block:
    """A member blocked from generating in one server."""

    guild_id: int
    user_id: int
    actor_id: int
    reason: str
    created_at: int


# Per-role and per-member allowances; table and column names come from this literal tuple.
_LIMIT_TABLES = (("role", "role_limits", "role_id"), ("member", "member_limits", "user_id"))
_LIMIT_SUBJECT = {kind: column for kind, _, column in _LIMIT_TABLES}
_DELETE_LIMIT_SQL = {
    kind: f"DELETE FROM {table} WHERE guild_id = ? AND {column} = ?"  # noqa: S608
    for kind, table, column in _LIMIT_TABLES
}
_SET_LIMIT_SQL = {
    kind: f"""INSERT INTO {table} (guild_id, {column}, allowance, actor_id, updated_at)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (guild_id, {column}) DO UPDATE SET allowance = excluded.allowance,
            actor_id = excluded.actor_id, updated_at = excluded.updated_at"""  # noqa: S608
    for kind, table, column in _LIMIT_TABLES
}

# A server's settings as one row; the lists come as JSON arrays.
_SETTINGS_COLUMNS = """
    (SELECT daily_budget FROM guild_settings WHERE guild_id = :guild),
    (SELECT default_resolution FROM guild_settings WHERE guild_id = :guild),
    (SELECT audit_channel_id FROM guild_settings WHERE guild_id = :guild),
    (SELECT json_group_array(json_array(mode, model)) FROM guild_default_models
        WHERE guild_id = :guild),
    (SELECT json_group_array(channel_id) FROM guild_channels WHERE guild_id = :guild),
    (SELECT json_group_array(word) FROM guild_blocklist WHERE guild_id = :guild)
"""
_SETTINGS_SQL = f"SELECT {_SETTINGS_COLUMNS}"

# What the checks before a job is accepted read (SqliteRules.glance), in one statement.
_GLANCE_SQL = f"""
SELECT {_SETTINGS_COLUMNS},
    (SELECT allowance FROM member_limits WHERE guild_id = :guild AND user_id = :user),
    (SELECT json_group_array(json_array(role_id, allowance)) FROM role_limits
        WHERE guild_id = :guild),
    checks.*
FROM ({RESERVE_CHECKS_SQL}) AS checks
"""  # noqa: S608

_GUILD_COLUMN_SQL = {
    column: f"""
    INSERT INTO guild_settings (guild_id, {column}, updated_at) VALUES (?, ?, ?)
    ON CONFLICT (guild_id) DO UPDATE SET {column} = excluded.{column},
                                         updated_at = excluded.updated_at
    """  # noqa: S608
    for column in ("daily_budget", "default_resolution", "audit_channel_id")
}


class SqliteRules:
    """A server's rules across their tables; every change is audited with its admin."""

    def __init__(self, db: Database) -> None:
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
        async with self._db.write() as db:
            if allowance is None:
                await db.execute(_DELETE_LIMIT_SQL[kind], (guild_id, subject_id))
            else:
                _check_allowance(allowance)
                await db.execute(
                    _SET_LIMIT_SQL[kind],
                    (guild_id, subject_id, allowance, actor_id, self._db.now()),
                )
            await record(
                db,
                self._db.now(),
                guild_id,
                actor_id,
                f"limit.{kind}",
                {_LIMIT_SUBJECT[kind]: subject_id, "allowance": allowance},
            )

    async def role_limits(self, guild_id: int) -> dict[int, int]:
        """Role id -> daily allowance, for every role with a limit in this server."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(
                "SELECT role_id, allowance FROM role_limits WHERE guild_id = ?", (guild_id,)
            )
        return {int(r[0]): int(r[1]) for r in rows}

    async def member_limits(self, guild_id: int) -> dict[int, int]:
        """User id -> daily allowance, for every member with their own limit in this server."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(
                "SELECT user_id, allowance FROM member_limits WHERE guild_id = ?", (guild_id,)
            )
        return {int(r[0]): int(r[1]) for r in rows}

    async def allowance(
        self, guild_id: int, user_id: int, role_ids: Iterable[int], default: int
    ) -> int:
        """The member's daily allowance: their own limit, else their best role's, else default."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(
                "SELECT 'member', user_id, allowance FROM member_limits "
                "WHERE guild_id = :guild AND user_id = :user "
                "UNION ALL SELECT 'role', role_id, allowance FROM role_limits "
                "WHERE guild_id = :guild",
                {"guild": guild_id, "user": user_id},
            )
        own = next((int(r[2]) for r in rows if r[0] == "member"), None)
        by_role = {int(r[1]): int(r[2]) for r in rows if r[0] == "role"}
        return allowance_of(own, by_role, role_ids, default)

    # Blocks

    async def block_member(
        self, guild_id: int, user_id: int, *, actor_id: int, reason: str = ""
    ) -> None:
        """Stop the member from generating in this server (until unblocked)."""
        async with self._db.write() as db:
            await db.execute(
                """
                INSERT INTO blocked_members (guild_id, user_id, actor_id, reason, created_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (guild_id, user_id) DO UPDATE SET actor_id = excluded.actor_id,
                    reason = excluded.reason, created_at = excluded.created_at
                """,
                (guild_id, user_id, actor_id, reason, self._db.now()),
            )
            await record(
                db,
                self._db.now(),
                guild_id,
                actor_id,
                "block",
                {"user_id": user_id, "reason": reason},
            )

    async def unblock_member(self, guild_id: int, user_id: int, *, actor_id: int) -> bool:
        """Lift a block; False if the member was not blocked."""
        async with self._db.write() as db:
            cursor = await db.execute(
                "DELETE FROM blocked_members WHERE guild_id = ? AND user_id = ?",
                (guild_id, user_id),
            )
            if cursor.rowcount != 1:
                return False
            await record(db, self._db.now(), guild_id, actor_id, "unblock", {"user_id": user_id})
            return True

    async def is_blocked(self, guild_id: int, user_id: int) -> bool:
        """Whether the member is blocked in this server."""
        async with self._db.read() as db:
            return await exists(
                db,
                "SELECT 1 FROM blocked_members WHERE guild_id = ? AND user_id = ?",
                (guild_id, user_id),
            )

    async def blocked_members(self, guild_id: int) -> list[Block]:
        """Every block in this server, oldest first."""
        async with self._db.read() as db:
            rows = await db.execute_fetchall(
                "SELECT guild_id, user_id, actor_id, reason, created_at FROM blocked_members "
                "WHERE guild_id = ? ORDER BY created_at, user_id",
                (guild_id,),
            )
        return [Block(int(r[0]), int(r[1]), int(r[2]), str(r[3]), int(r[4])) for r in rows]

    # Settings

    async def settings(self, guild_id: int) -> GuildSettings:
        """Everything this server has set (defaults where it has set nothing)."""
        async with self._db.glance() as db:
            rows = await db.execute_fetchall(_SETTINGS_SQL, {"guild": guild_id})
        return _guild_settings(guild_id, next(iter(rows)))

    async def glance(self, guild_id: int, user_id: int, *, period: str) -> Glance:
        """What the checks before a job is accepted need, in one read: the server's settings,
        the member's block, limits, unfinished jobs and day's sums, and the day's spend."""
        async with self._db.glance() as db:
            rows = await db.execute_fetchall(
                _GLANCE_SQL, {"guild": guild_id, "user": user_id, "period": period}
            )
        row = tuple(next(iter(rows)))
        own, roles_json = row[6:8]
        totals = quota_totals(row[8:])
        return Glance(
            settings=_guild_settings(guild_id, row[:6]),
            blocked=totals.blocked,
            own_allowance=None if own is None else int(own),
            role_allowances={int(role): int(limit) for role, limit in json.loads(roles_json)},
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
        async with self._db.write() as db:
            await db.execute(_GUILD_COLUMN_SQL[column], (guild_id, value, self._db.now()))
            await record(
                db, self._db.now(), guild_id, actor_id, f"settings.{column}", {column: value}
            )

    async def set_default_model(
        self, guild_id: int, mode: str, model: str | None, *, actor_id: int
    ) -> None:
        """Set the model used for `mode` when a member names none; None goes back to default."""
        async with self._db.write() as db:
            if model is None:
                await db.execute(
                    "DELETE FROM guild_default_models WHERE guild_id = ? AND mode = ?",
                    (guild_id, str(mode)),
                )
            else:
                await db.execute(
                    """
                    INSERT INTO guild_default_models (guild_id, mode, model) VALUES (?, ?, ?)
                    ON CONFLICT (guild_id, mode) DO UPDATE SET model = excluded.model
                    """,
                    (guild_id, str(mode), model),
                )
            await record(
                db,
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
            "INSERT INTO guild_channels (guild_id, channel_id) VALUES (?, ?) "
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
            "DELETE FROM guild_channels WHERE guild_id = ? AND channel_id = ?",
            guild_id,
            channel_id,
            actor_id,
            "channels.disallow",
            {"channel_id": channel_id},
        )

    async def clear_allowed_channels(self, guild_id: int, *, actor_id: int) -> None:
        """Empty the allowed list: generation is allowed in every channel again."""
        async with self._db.write() as db:
            await db.execute("DELETE FROM guild_channels WHERE guild_id = ?", (guild_id,))
            await record(db, self._db.now(), guild_id, actor_id, "channels.clear", {})

    async def add_blocked_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Refuse prompts containing `word` (compared lowercased); False if already listed."""
        word = blocklist_entry(word)
        return await _change_list(
            self._db,
            "INSERT INTO guild_blocklist (guild_id, word) VALUES (?, ?) ON CONFLICT DO NOTHING",
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
            "DELETE FROM guild_blocklist WHERE guild_id = ? AND word = ?",
            guild_id,
            word,
            actor_id,
            "blocklist.remove",
            {"word": word},
        )


async def _change_list(
    database: Database,
    sql: str,
    guild_id: int,
    item: int | str,
    actor_id: int,
    action: str,
    details: Mapping[str, object],
) -> bool:
    """Add to or take from one of the server's lists; audited only when it changed."""
    async with database.write() as db:
        cursor = await db.execute(sql, (guild_id, item))
        changed = cursor.rowcount == 1
        if changed:
            await record(db, database.now(), guild_id, actor_id, action, details)
        return changed


def _guild_settings(guild_id: int, row: Sequence[Any]) -> GuildSettings:
    budget, resolution, audit_channel, models, channels, words = row
    return GuildSettings(
        guild_id=guild_id,
        daily_budget=budget,
        default_resolution=resolution,
        audit_channel_id=audit_channel,
        default_models={str(mode): str(model) for mode, model in json.loads(models)},
        allowed_channels=frozenset(int(channel) for channel in json.loads(channels)),
        # Sorted here: json_group_array keeps no promised order. Code-point order is the
        # byte order SQLite's ORDER BY gave for UTF-8 text.
        blocklist=tuple(sorted(str(word) for word in json.loads(words))),
    )


def _check_allowance(allowance: int) -> None:
    if allowance < 0:
        raise ValueError(f"an allowance cannot be negative, not {allowance}")
