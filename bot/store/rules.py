"""Per-server settings, blocks and audit entries as the store hands them out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
        if self.own_allowance is not None:
            return self.own_allowance
        limits = [self.role_allowances[role] for role in role_ids if role in self.role_allowances]
        return max(limits) if limits else default


@dataclass(frozen=True, slots=True)
class Block:
    """A member blocked from generating in one server."""

    guild_id: int
    user_id: int
    actor_id: int
    reason: str
    created_at: int


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
