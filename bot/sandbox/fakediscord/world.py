"""The fake Discord's world: users, guilds, roles, channels, members, and permission math."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from discord.utils import time_snowflake

Payload = dict[str, Any]

# Permission bits, named as in Discord's documentation.
CREATE_INSTANT_INVITE = 1 << 0
KICK_MEMBERS = 1 << 1
BAN_MEMBERS = 1 << 2
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
SEND_TTS_MESSAGES = 1 << 12
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 53) - 1

EVERYONE_DEFAULT = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)
BOT_ROLE_DEFAULT = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | SEND_MESSAGES_IN_THREADS
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
)
# What Discord reports as app_permissions in a DM with the bot.
DM_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
    | MENTION_EVERYONE
    | USE_APPLICATION_COMMANDS
)
# Without Send Messages, Discord implicitly takes these away in text channels.
_NEEDS_SEND = MENTION_EVERYONE | SEND_TTS_MESSAGES | ATTACH_FILES | EMBED_LINKS

MIB = 1024 * 1024
# Upload limit by boost tier (0..3).
TIER_UPLOAD_LIMITS = (10 * MIB, 10 * MIB, 50 * MIB, 100 * MIB)

GUILD_TEXT = 0
DM = 1
PUBLIC_THREAD = 11
GUILD_FORUM = 15
THREADS = frozenset({10, PUBLIC_THREAD, 12})  # announcement, public and private threads


def iso(moment: datetime) -> str:
    """Format an aware datetime the way Discord does (ISO 8601 with offset)."""
    return moment.astimezone(UTC).isoformat()


class Snowflakes:
    """Unique snowflakes from the fake's clock, so ids sort by creation time like Discord's."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._counter = itertools.count(1)

    def next(self, at: datetime | None = None) -> int:
        """A new snowflake whose timestamp is `at` (default: now on the fake's clock)."""
        return time_snowflake(at or self._clock()) | (next(self._counter) & 0x3FFFFF)


@dataclass
class User:
    """A Discord user; `dms_open=False` makes DMs to them fail with 50007."""

    id: int
    username: str
    bot: bool = False
    global_name: str | None = None
    dms_open: bool = True

    def to_payload(self) -> Payload:
        """The user object as the API sends it."""
        payload: Payload = {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }
        if self.bot:
            payload["bot"] = True
        return payload


@dataclass
class Role:
    """A guild role; the @everyone role has the guild's id."""

    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    bot_id: int | None = None

    def to_payload(self) -> Payload:
        """The role object as the API sends it."""
        payload: Payload = {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }
        if self.bot_id is not None:
            payload["tags"] = {"bot_id": str(self.bot_id)}
        return payload


@dataclass
class Overwrite:
    """A channel permission overwrite for a role (type 0) or a member (type 1)."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0

    def to_payload(self) -> Payload:
        """The overwrite object as the API sends it."""
        return {
            "id": str(self.id),
            "type": self.type,
            "allow": str(self.allow),
            "deny": str(self.deny),
        }


@dataclass
class Channel:
    """A guild text or forum channel, a thread (a forum's posts are threads), or a DM channel."""

    id: int
    type: int
    name: str | None = None
    guild_id: int | None = None
    position: int = 0
    overwrites: dict[int, Overwrite] = field(default_factory=dict)
    recipient_id: int | None = None
    deleted: bool = False
    nsfw: bool = False
    topic: str | None = None
    attachment_size_limit: int | None = None
    last_message_id: int | None = None
    parent_id: int | None = None  # a thread's channel (text or forum)
    owner_id: int | None = None  # who started the thread
    created_at: datetime | None = None

    @property
    def is_thread(self) -> bool:
        """A thread takes its permissions from its parent channel."""
        return self.type in THREADS

    def to_payload(self, recipients: Iterable[User] = ()) -> Payload:
        """The channel object as the API sends it."""
        payload: Payload = {
            "id": str(self.id),
            "type": self.type,
            "last_message_id": str(self.last_message_id) if self.last_message_id else None,
            "flags": 0,
        }
        if self.type == DM:
            payload["recipients"] = [user.to_payload() for user in recipients]
            return payload
        if self.is_thread:
            created = iso(self.created_at or datetime.now(UTC))
            payload.update(
                {
                    "guild_id": str(self.guild_id),
                    "name": self.name,
                    "parent_id": str(self.parent_id),
                    "owner_id": str(self.owner_id),
                    "rate_limit_per_user": 0,
                    "message_count": 0,
                    "member_count": 1,
                    "total_message_sent": 0,
                    "applied_tags": [],
                    "thread_metadata": {
                        "archived": False,
                        "auto_archive_duration": 1440,
                        "archive_timestamp": created,
                        "locked": False,
                        "create_timestamp": created,
                    },
                }
            )
            return payload
        payload.update(
            {
                "guild_id": str(self.guild_id),
                "name": self.name,
                "position": self.position,
                "permission_overwrites": [ow.to_payload() for ow in self.overwrites.values()],
                "parent_id": None,
                "topic": self.topic,
                "nsfw": self.nsfw,
                "rate_limit_per_user": 0,
                "default_thread_rate_limit_per_user": 0,
                "last_pin_timestamp": None,
            }
        )
        if self.type == GUILD_FORUM:
            payload.update(
                {
                    "available_tags": [],
                    "default_reaction_emoji": None,
                    "default_sort_order": None,
                    "default_forum_layout": 0,
                    "default_auto_archive_duration": 1440,
                }
            )
        return payload


@dataclass
class Member:
    """A user's membership in a guild."""

    user_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: datetime = field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=UTC))

    def to_payload(self, user: User, permissions: int | None = None) -> Payload:
        """The guild member object as the API sends it (with permissions inside interactions)."""
        payload: Payload = {
            "user": user.to_payload(),
            "roles": [str(role_id) for role_id in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            payload["permissions"] = str(permissions)
        return payload


@dataclass
class Guild:
    """A server: its roles, channels and members."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    thread_ids: list[int] = field(default_factory=list)  # active threads, sent apart
    members: dict[int, Member] = field(default_factory=dict)
    premium_tier: int = 0
    preferred_locale: str = "en-US"
    attachment_size_limit: int | None = None

    @property
    def everyone(self) -> Role:
        """The @everyone role (its id is the guild's)."""
        return self.roles[self.id]


class World:
    """Everything the fake Discord knows about, with Discord's permission rules."""

    def __init__(self, snowflakes: Snowflakes) -> None:
        self.snowflakes = snowflakes
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}

    def add_user(self, username: str, *, bot: bool = False, user_id: int | None = None) -> User:
        """Create a user."""
        user = User(id=user_id or self.snowflakes.next(), username=username, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, owner_id: int, *, everyone: int = EVERYONE_DEFAULT) -> Guild:
        """Create a guild with its @everyone role; the owner becomes a member."""
        guild = Guild(id=self.snowflakes.next(), name=name, owner_id=owner_id)
        guild.roles[guild.id] = Role(id=guild.id, name="@everyone", permissions=everyone)
        guild.members[owner_id] = Member(user_id=owner_id)
        self.guilds[guild.id] = guild
        return guild

    def add_role(
        self,
        guild_id: int,
        name: str,
        permissions: int,
        *,
        managed: bool = False,
        bot_id: int | None = None,
    ) -> Role:
        """Create a role above the existing ones."""
        guild = self.guilds[guild_id]
        role = Role(
            id=self.snowflakes.next(),
            name=name,
            permissions=permissions,
            position=len(guild.roles),
            managed=managed,
            bot_id=bot_id,
        )
        guild.roles[role.id] = role
        return role

    def add_text_channel(self, guild_id: int, name: str, *, type: int = GUILD_TEXT) -> Channel:
        """Create a text channel (or, with type=GUILD_FORUM, a forum channel) in a guild."""
        guild = self.guilds[guild_id]
        channel = Channel(
            id=self.snowflakes.next(),
            type=type,
            name=name,
            guild_id=guild_id,
            position=len(guild.channel_ids),
        )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        return channel

    def add_thread(
        self, parent_id: int, name: str, owner_id: int, *, created_at: datetime
    ) -> Channel:
        """Start a public thread in a text channel (in a forum channel: a post)."""
        parent = self.channels[parent_id]
        assert parent.guild_id is not None, "threads live in a server's channels"
        thread = Channel(
            id=self.snowflakes.next(),
            type=PUBLIC_THREAD,
            name=name,
            guild_id=parent.guild_id,
            parent_id=parent.id,
            owner_id=owner_id,
            created_at=created_at,
        )
        self.channels[thread.id] = thread
        self.guilds[parent.guild_id].thread_ids.append(thread.id)
        return thread

    def add_member(self, guild_id: int, user_id: int, roles: Iterable[int] = ()) -> Member:
        """Make a user a member of a guild with the given roles."""
        member = Member(user_id=user_id, roles=list(roles))
        self.guilds[guild_id].members[user_id] = member
        return member

    def dm_channel(self, user_id: int) -> Channel:
        """The DM channel with a user, created on first use (like POST /users/@me/channels)."""
        for channel in self.channels.values():
            if channel.type == DM and channel.recipient_id == user_id:
                return channel
        channel = Channel(id=self.snowflakes.next(), type=DM, recipient_id=user_id)
        self.channels[channel.id] = channel
        return channel

    def guild_of(self, channel: Channel) -> Guild | None:
        """The guild a channel belongs to (None for DMs)."""
        return self.guilds.get(channel.guild_id) if channel.guild_id is not None else None

    def base_permissions(self, guild: Guild, user_id: int) -> int:
        """Guild-wide permissions: @everyone plus the member's roles; owners and admins get all."""
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        member = guild.members.get(user_id)
        if member is None:
            return 0
        permissions = guild.everyone.permissions
        for role_id in member.roles:
            role = guild.roles.get(role_id)
            if role is not None:
                permissions |= role.permissions
        if permissions & ADMINISTRATOR:
            return ALL_PERMISSIONS
        return permissions

    def channel_permissions(self, channel: Channel, user_id: int) -> int:
        """Permissions in a channel, following Discord's overwrite order and implicit rules.

        A thread has its parent's permissions, except that Send Messages in Threads takes the
        place of Send Messages (without it, attaching files and embedding links go too).
        """
        if channel.is_thread and channel.parent_id is not None:
            parent = self.channels[channel.parent_id]
            return self._permissions(parent, user_id, send=SEND_MESSAGES_IN_THREADS)
        return self._permissions(channel, user_id, send=SEND_MESSAGES)

    def _permissions(self, channel: Channel, user_id: int, *, send: int) -> int:
        guild = self.guild_of(channel)
        if guild is None:
            return DM_PERMISSIONS
        permissions = self.base_permissions(guild, user_id)
        if permissions == ALL_PERMISSIONS:
            return ALL_PERMISSIONS
        member = guild.members.get(user_id)
        if member is None:
            return 0
        everyone = channel.overwrites.get(guild.id)
        if everyone is not None:
            permissions = (permissions & ~everyone.deny) | everyone.allow
        role_allow = role_deny = 0
        for role_id in member.roles:
            overwrite = channel.overwrites.get(role_id)
            if overwrite is not None and overwrite.type == 0:
                role_allow |= overwrite.allow
                role_deny |= overwrite.deny
        permissions = (permissions & ~role_deny) | role_allow
        own = channel.overwrites.get(user_id)
        if own is not None and own.type == 1:
            permissions = (permissions & ~own.deny) | own.allow
        if not permissions & VIEW_CHANNEL:
            return 0
        if not permissions & send:
            permissions &= ~_NEEDS_SEND
        return permissions

    def attachment_size_limit(self, channel: Channel) -> int:
        """The upload limit in a channel: channel override, guild override, then the boost tier."""
        if channel.attachment_size_limit is not None:
            return channel.attachment_size_limit
        guild = self.guild_of(channel)
        if guild is None:
            return TIER_UPLOAD_LIMITS[0]
        if guild.attachment_size_limit is not None:
            return guild.attachment_size_limit
        return TIER_UPLOAD_LIMITS[max(0, min(guild.premium_tier, 3))]

    def member_payload(self, guild: Guild, user_id: int, permissions: int | None = None) -> Payload:
        """A member object for a user of this guild."""
        return guild.members[user_id].to_payload(self.users[user_id], permissions)

    def guild_payload(self, guild: Guild, *, joined_at: datetime) -> Payload:
        """The GUILD_CREATE payload: the guild with its roles, channels and members."""
        channels = [
            self.channels[cid].to_payload()
            for cid in guild.channel_ids
            if not self.channels[cid].deleted
        ]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": guild.premium_tier,
            "premium_subscription_count": 0,
            "preferred_locale": guild.preferred_locale,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "features": [],
            "roles": [role.to_payload() for role in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "channels": channels,
            "threads": [
                self.channels[tid].to_payload()
                for tid in guild.thread_ids
                if not self.channels[tid].deleted
            ],
            "members": [self.member_payload(guild, uid) for uid in guild.members],
            "member_count": len(guild.members),
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "joined_at": iso(joined_at),
            "large": False,
            "unavailable": False,
            "lazy": True,
        }
