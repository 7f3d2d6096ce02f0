"""World changes a test makes in the fake Discord; connected bots get the matching events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .records import Payload, StoredMessage
from .state import FakeState, _url_path
from .world import GUILD_FORUM, Channel, Guild, Overwrite, Role, User


class WorldChanges(FakeState):
    """Members, roles, channels, threads, permissions, messages and connections, changed live."""

    def add_user(self, username: str, *, dms_open: bool = True) -> User:
        """A user who shares no server with the bot (yet)."""
        user = self.world.add_user(username)
        user.dms_open = dms_open
        return user

    async def add_member(
        self,
        username: str,
        *,
        guild: Guild | None = None,
        roles: Sequence[Role] = (),
        permissions: int | None = None,
    ) -> User:
        """A new member (default guild: the test guild); `permissions` adds a role granting them."""
        guild = guild or self.guild
        user = self.world.add_user(username)
        role_ids = [r.id for r in roles]
        if permissions is not None:
            role_ids.append((await self.add_role(f"{username}-role", permissions, guild=guild)).id)
        self.world.add_member(guild.id, user.id, role_ids)
        payload = self.world.member_payload(guild, user.id)
        payload["guild_id"] = str(guild.id)
        await self.gateway.broadcast(guild.id, "GUILD_MEMBER_ADD", payload)
        return user

    async def add_role(self, name: str, permissions: int, *, guild: Guild | None = None) -> Role:
        """A new role in a guild."""
        guild = guild or self.guild
        role = self.world.add_role(guild.id, name, permissions)
        await self.gateway.broadcast(
            guild.id, "GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role.to_payload()}
        )
        return role

    async def set_role_permissions(self, role: Role, permissions: int) -> None:
        """Change what a role grants (e.g. the bot's role, or @everyone = guild.everyone)."""
        role.permissions = permissions
        for guild in self.world.guilds.values():
            if guild.roles.get(role.id) is role:
                payload = {"guild_id": str(guild.id), "role": role.to_payload()}
                await self.gateway.broadcast(guild.id, "GUILD_ROLE_UPDATE", payload)

    async def add_text_channel(self, name: str, *, guild: Guild | None = None) -> Channel:
        """A new text channel."""
        guild = guild or self.guild
        channel = self.world.add_text_channel(guild.id, name)
        await self.gateway.broadcast(guild.id, "CHANNEL_CREATE", channel.to_payload())
        return channel

    async def add_forum_channel(self, name: str, *, guild: Guild | None = None) -> Channel:
        """A new forum channel: members post threads in it, never plain messages."""
        guild = guild or self.guild
        channel = self.world.add_text_channel(guild.id, name, type=GUILD_FORUM)
        await self.gateway.broadcast(guild.id, "CHANNEL_CREATE", channel.to_payload())
        return channel

    async def add_thread(self, parent: Channel, name: str, *, owner: User | None = None) -> Channel:
        """A member starts a public thread in a text channel, or a post in a forum channel."""
        starter = owner or self.member
        thread = self.world.add_thread(parent.id, name, starter.id, created_at=self.now())
        payload = dict(thread.to_payload(), newly_created=True)
        await self.gateway.broadcast(parent.guild_id, "THREAD_CREATE", payload)
        return thread

    async def set_permission_overwrite(
        self, channel: Channel, target: User | Role, *, allow: int = 0, deny: int = 0
    ) -> None:
        """Set a role's or member's overwrite in a channel."""
        kind = 1 if isinstance(target, User) else 0
        channel.overwrites[target.id] = Overwrite(id=target.id, type=kind, allow=allow, deny=deny)
        await self.gateway.broadcast(channel.guild_id, "CHANNEL_UPDATE", channel.to_payload())

    async def set_bot_permissions(self, channel: Channel, *, allow: int = 0, deny: int = 0) -> None:
        """Allow/deny permissions for the bot in one channel (e.g. deny=ATTACH_FILES)."""
        await self.set_permission_overwrite(channel, self.bot_user, allow=allow, deny=deny)

    async def delete_channel(self, channel: Channel) -> None:
        """Delete a channel: later requests to it answer 404 10003 Unknown Channel."""
        channel.deleted = True
        await self.gateway.broadcast(channel.guild_id, "CHANNEL_DELETE", channel.to_payload())

    async def remove_bot(self, guild: Guild | None = None) -> None:
        """Kick the bot from a guild: it gets GUILD_DELETE (without `unavailable`), and later
        requests to the guild's channels answer 403 50001 Missing Access."""
        guild = guild or self.guild
        await self.gateway.broadcast(guild.id, "GUILD_DELETE", {"id": str(guild.id)})
        guild.members.pop(self.bot_user.id, None)

    def close_dms(self, user: User) -> None:
        """The user blocks DMs from the bot: messages to their DM channel answer 403 50007."""
        user.dms_open = False

    def set_attachment_size_limit(
        self, limit: int | None, *, guild: Guild | None = None, channel: Channel | None = None
    ) -> None:
        """Override the upload limit of a channel or a guild (None restores the default)."""
        if channel is not None:
            channel.attachment_size_limit = limit
        else:
            (guild or self.guild).attachment_size_limit = limit

    def attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None = None,
        width: int | None = None,
        height: int | None = None,
        *,
        channel: Channel | None = None,
    ) -> Payload:
        """A member's upload for an attachment option: the attachment object, served by the CDN."""
        stored = self.store.store_attachment(
            data,
            filename,
            channel_id=(channel or self.channel).id,
            content_type=content_type,
            width=width,
            height=height,
            ephemeral=True,
        )
        return stored.to_payload()

    async def post_message(
        self,
        user: User,
        channel: Channel,
        content: str = "",
        *,
        attachments: Sequence[Mapping[str, Any]] = (),
    ) -> StoredMessage:
        """A member posts a message (e.g. the target of a message command)."""
        message = self.store.create(
            channel,
            user.id,
            {"content": content},
            (),
            via="user",
            size_limit=self.world.attachment_size_limit(channel),
            allow_empty=bool(attachments),
        )
        for attachment in attachments:
            stored = self.store.cdn_lookup(_url_path(str(attachment["url"])))
            if stored is not None:
                stored.ephemeral = False
                message.attachments.append(stored)
        await self.broadcast_message("MESSAGE_CREATE", message)
        return message

    async def send_reconnect(self) -> None:
        """Send op 7 RECONNECT to connected bots (they come back with RESUME)."""
        await self.gateway.send_reconnect()

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every bot websocket with a close code."""
        await self.gateway.drop_connections(code)
