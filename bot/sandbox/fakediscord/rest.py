"""The fake's REST API: the routes discord.py uses, answered the way Discord answers them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .errors import ApiError, invalid_form, missing_access, missing_permissions, unknown
from .records import EPHEMERAL, LOADING, FakeInteraction, InteractionResponse, StoredMessage
from .routes import Call, Handler, Reply, Route
from .world import (
    ATTACH_FILES,
    DM,
    GUILD_FORUM,
    MANAGE_MESSAGES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
    Channel,
    Guild,
    Payload,
)

if TYPE_CHECKING:
    from .fake import FakeDiscord

ACK_DEADLINE = timedelta(seconds=3)
TOKEN_LIFETIME = timedelta(minutes=15)
# With enforce_nonce, Discord checks a nonce "for uniqueness in the past few minutes".
NONCE_WINDOW = timedelta(minutes=5)
MAX_NONCE_LENGTH = 25

# Callback types each interaction type may answer with.
_ALLOWED_CALLBACKS = {
    2: {4, 5, 9},
    3: {4, 5, 6, 7, 9},
    4: {8},
    5: {4, 5, 6, 7},
}


class RestApi:
    """Route handlers; each returns (status, JSON body or None) or raises ApiError."""

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake
        self._world = fake.world
        self._store = fake.store

    def handler(self, route: Route) -> Handler:
        """The bound handler for a route."""
        handler: Handler = getattr(self, route.handler)
        return handler

    # Identity, application, gateway

    async def get_me(self, call: Call) -> Reply:
        user = self._fake.bot_user.to_payload()
        user.update({"verified": True, "mfa_enabled": False, "locale": "en-US", "email": None})
        return 200, user

    async def get_user(self, call: Call, user_id: str) -> Reply:
        user = self._world.users.get(_int(user_id))
        if user is None:
            raise unknown("User", 10013)
        return 200, user.to_payload()

    async def get_my_guilds(self, call: Call) -> Reply:
        guilds: list[Payload] = [
            {
                "id": str(g.id),
                "name": g.name,
                "icon": None,
                "owner": False,
                "permissions": str(self._world.base_permissions(g, self._fake.bot_user.id)),
                "features": [],
            }
            for g in self._fake.bot_guilds()
        ]
        return 200, guilds

    async def get_application(self, call: Call) -> Reply:
        return 200, self._fake.application_payload()

    async def get_gateway(self, call: Call) -> Reply:
        return 200, {"url": self._fake.gateway_url}

    async def get_gateway_bot(self, call: Call) -> Reply:
        return 200, {
            "url": self._fake.gateway_url,
            "shards": self._fake.shard_count,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
        }

    # Application commands

    async def get_commands(
        self, call: Call, application_id: str, guild_id: str | None = None
    ) -> Reply:
        scope = self._command_scope(application_id, guild_id)
        return 200, self._fake.commands.get(scope)

    async def put_commands(
        self, call: Call, application_id: str, guild_id: str | None = None
    ) -> Reply:
        scope = self._command_scope(application_id, guild_id)
        if not isinstance(call.json, list):
            raise invalid_form("_root", "BASE_TYPE_ARRAY", "Must be an array.")
        return 200, self._fake.commands.overwrite(scope, call.json)

    def _command_scope(self, application_id: str, guild_id: str | None) -> int | None:
        if _int(application_id) != self._fake.application_id:
            raise missing_access()
        if guild_id is None:
            return None
        guild = self._guild(guild_id)
        return guild.id

    # Interaction callback, followups and the interaction's messages

    async def callback(self, call: Call, interaction_id: str, interaction_token: str) -> Reply:
        interaction = self._fake.interactions.get(_int(interaction_id))
        if interaction is None or interaction.token != interaction_token:
            raise unknown("interaction", 10062)
        if interaction.acknowledged:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if self._fake.now() - interaction.created_at > ACK_DEADLINE:
            raise unknown("interaction", 10062)
        channel = self._channel(str(interaction.channel_id))
        body = call.body
        rtype = body.get("type")
        data: Payload = body.get("data") or {}
        if rtype not in _ALLOWED_CALLBACKS.get(interaction.type, set()):
            raise invalid_form(
                "type",
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Callback type {rtype} is not valid for interaction type {interaction.type}.",
            )
        if rtype == 7 and interaction.source_message is None:
            raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", "No message to update.")
        limit = int(interaction.payload["attachment_size_limit"])
        bot_id = self._fake.bot_user.id
        message: StoredMessage | None = None
        if rtype == 4:
            message = self._store.create(
                channel,
                bot_id,
                data,
                call.files,
                via="interaction",
                size_limit=limit,
                interaction=interaction,
            )
            interaction.original = message
        elif rtype == 5:
            message = self._store.create(
                channel,
                bot_id,
                {},
                (),
                via="interaction",
                size_limit=limit,
                interaction=interaction,
                extra_flags=LOADING | (int(data.get("flags") or 0) & EPHEMERAL),
                allow_empty=True,
            )
            interaction.original = message
        elif rtype == 7:
            assert interaction.source_message is not None
            message = self._store.edit(
                interaction.source_message, data, call.files, size_limit=limit
            )
        elif rtype == 9:
            for key in ("custom_id", "title", "components"):
                if not data.get(key):
                    raise invalid_form(
                        f"data.{key}", "BASE_TYPE_REQUIRED", "This field is required"
                    )
        interaction.responses.append(
            InteractionResponse(type=rtype, data=data, at=self._fake.now())
        )
        if message is not None:
            event = "MESSAGE_UPDATE" if rtype == 7 else "MESSAGE_CREATE"
            await self._fake.broadcast_message(event, message)
        if not call.flag("with_response"):
            return 204, None
        answer: Payload = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_loading": rtype == 5,
                "response_message_ephemeral": bool(message and message.ephemeral),
            },
            "resource": {"type": rtype},
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = str(message.id)
            answer["resource"]["message"] = self._store.payload(message)
        return 200, answer

    async def followup(self, call: Call, application_id: str, token: str) -> Reply:
        interaction = self._interaction_for(application_id, token)
        if not interaction.acknowledged:
            raise unknown("Webhook", 10015)
        channel = self._channel(str(interaction.channel_id))
        limit = int(interaction.payload["attachment_size_limit"])
        placeholder = interaction.original
        response = interaction.response
        if (
            response is not None
            and response.type == 5
            and placeholder is not None
            and placeholder.loading
            and not placeholder.deleted
        ):
            # The first followup of a deferred reply fills the "thinking" message: it keeps the
            # defer's visibility whatever flags the followup asks for.
            message = self._store.edit(
                placeholder,
                call.body,
                call.files,
                size_limit=limit,
                resolve_loading=True,
                record_edit=False,
            )
            event = "MESSAGE_UPDATE"
        else:
            message = self._store.create(
                channel,
                self._fake.bot_user.id,
                call.body,
                call.files,
                via="interaction",
                size_limit=limit,
                interaction=interaction,
            )
            event = "MESSAGE_CREATE"
        interaction.followups.append(message)
        await self._fake.broadcast_message(event, message)
        if not call.flag("wait"):
            return 204, None
        return 200, self._store.payload(message)

    async def get_webhook_message(
        self, call: Call, application_id: str, token: str, message_id: str
    ) -> Reply:
        interaction = self._interaction_for(application_id, token)
        message = self._webhook_message(interaction, message_id)
        return 200, self._store.payload(message)

    async def edit_webhook_message(
        self, call: Call, application_id: str, token: str, message_id: str
    ) -> Reply:
        interaction = self._interaction_for(application_id, token)
        message = self._webhook_message(interaction, message_id)
        limit = int(interaction.payload["attachment_size_limit"])
        self._store.edit(
            message,
            call.body,
            call.files,
            size_limit=limit,
            resolve_loading=message is interaction.original,
        )
        await self._fake.broadcast_message("MESSAGE_UPDATE", message)
        return 200, self._store.payload(message)

    async def delete_webhook_message(
        self, call: Call, application_id: str, token: str, message_id: str
    ) -> Reply:
        interaction = self._interaction_for(application_id, token)
        message = self._webhook_message(interaction, message_id)
        self._store.delete(message)
        await self._fake.broadcast_message("MESSAGE_DELETE", message)
        return 204, None

    def _interaction_for(self, application_id: str, token: str) -> FakeInteraction:
        interaction = self._fake.interaction_by_token(token)
        if interaction is None or _int(application_id) != self._fake.application_id:
            raise unknown("Webhook", 10015)
        if self._fake.now() - interaction.created_at > TOKEN_LIFETIME:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        self._channel(str(interaction.channel_id))
        return interaction

    def _webhook_message(self, interaction: FakeInteraction, message_id: str) -> StoredMessage:
        if message_id == "@original":
            message = interaction.original
            if message is None and interaction.response and interaction.response.type in (6, 7):
                message = interaction.source_message
        else:
            message = self._store.by_id.get(_int(message_id))
            # Only messages sent through interactions are the interaction webhook's to touch.
            if message is not None and not (
                message.author_id == self._fake.bot_user.id
                and (message.interaction_id is not None or message is interaction.source_message)
            ):
                message = None
        if message is None or message.deleted:
            raise unknown("Message", 10008)
        return message

    # Channels and their messages (bot token)

    async def get_channel(self, call: Call, channel_id: str) -> Reply:
        channel = self._channel(channel_id)
        if channel.type == DM:
            return 200, self._fake.dm_payload(channel)
        self._require(channel, VIEW_CHANNEL, missing=missing_access)
        return 200, channel.to_payload()

    async def create_dm(self, call: Call) -> Reply:
        recipient = self._world.users.get(_int(call.body.get("recipient_id")))
        if recipient is None:
            raise invalid_form("recipient_id", "NUMBER_TYPE_COERCE", "Value is not a known user.")
        channel = self._world.dm_channel(recipient.id)
        return 200, self._fake.dm_payload(channel)

    async def list_messages(self, call: Call, channel_id: str) -> Reply:
        channel = self._channel(channel_id)
        self._require(channel, VIEW_CHANNEL | READ_MESSAGE_HISTORY, missing=missing_access)
        limit = max(1, min(100, _int(call.query.get("limit", "50"))))
        visible = [
            m for m in self._store.in_channel(channel.id) if not m.deleted and not m.ephemeral
        ]
        if "before" in call.query:
            visible = [m for m in visible if m.id < _int(call.query["before"])]
        if "after" in call.query:
            visible = [m for m in visible if m.id > _int(call.query["after"])]
            visible = visible[:limit]
        visible = list(reversed(visible))[:limit]
        return 200, [self._store.payload(m) for m in visible]

    async def create_message(self, call: Call, channel_id: str) -> Reply:
        channel = self._channel(channel_id)
        if channel.type == DM:
            recipient = self._world.users[channel.recipient_id or 0]
            if not recipient.dms_open:
                raise ApiError(403, 50007, "Cannot send messages to this user")
        else:
            self._require(channel, VIEW_CHANNEL, missing=missing_access)
            if channel.type == GUILD_FORUM:
                raise ApiError(400, 50008, "Cannot send messages in a non-text channel")
            self._require(channel, SEND_MESSAGES_IN_THREADS if channel.is_thread else SEND_MESSAGES)
            if call.files:
                self._require(channel, ATTACH_FILES)
            if call.body.get("message_reference"):
                self._require(channel, READ_MESSAGE_HISTORY)
        earlier = self._same_nonce(call.body)
        if earlier is not None:
            # Discord's documented enforce_nonce: the earlier message is returned, none created.
            return 200, self._store.payload(earlier)
        message = self._store.create(
            channel,
            self._fake.bot_user.id,
            call.body,
            call.files,
            via="bot",
            size_limit=self._world.attachment_size_limit(channel),
        )
        await self._fake.broadcast_message("MESSAGE_CREATE", message)
        return 200, self._store.payload(message)

    def _same_nonce(self, body: Payload) -> StoredMessage | None:
        """The bot's recent message with this create body's nonce, when it enforces one."""
        nonce = body.get("nonce")
        if nonce is None:
            return None
        if isinstance(nonce, bool) or not isinstance(nonce, int | str):
            raise invalid_form("nonce", "BASE_TYPE_STRING", "Must be an integer or a string.")
        if isinstance(nonce, str) and len(nonce) > MAX_NONCE_LENGTH:
            raise invalid_form(
                "nonce", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_NONCE_LENGTH} or fewer in length."
            )
        if not body.get("enforce_nonce"):
            return None
        since = self._fake.now() - NONCE_WINDOW
        return self._store.by_nonce(self._fake.bot_user.id, str(nonce), since)

    async def get_message(self, call: Call, channel_id: str, message_id: str) -> Reply:
        channel = self._channel(channel_id)
        self._require(channel, VIEW_CHANNEL | READ_MESSAGE_HISTORY, missing=missing_access)
        return 200, self._store.payload(self._channel_message(channel, message_id))

    async def edit_message(self, call: Call, channel_id: str, message_id: str) -> Reply:
        channel = self._channel(channel_id)
        self._require(channel, VIEW_CHANNEL, missing=missing_access)
        message = self._channel_message(channel, message_id)
        if message.author_id != self._fake.bot_user.id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        if call.files:
            self._require(channel, ATTACH_FILES)
        self._store.edit(
            message, call.body, call.files, size_limit=self._world.attachment_size_limit(channel)
        )
        await self._fake.broadcast_message("MESSAGE_UPDATE", message)
        return 200, self._store.payload(message)

    async def delete_message(self, call: Call, channel_id: str, message_id: str) -> Reply:
        channel = self._channel(channel_id)
        self._require(channel, VIEW_CHANNEL, missing=missing_access)
        message = self._channel_message(channel, message_id)
        if message.author_id != self._fake.bot_user.id:
            self._require(channel, MANAGE_MESSAGES)
        self._store.delete(message)
        await self._fake.broadcast_message("MESSAGE_DELETE", message)
        return 204, None

    async def typing(self, call: Call, channel_id: str) -> Reply:
        channel = self._channel(channel_id)
        if channel.type != DM:
            self._require(channel, VIEW_CHANNEL, missing=missing_access)
            self._require(channel, SEND_MESSAGES)
        return 204, None

    def _channel(self, channel_id: str) -> Channel:
        channel = self._world.channels.get(_int(channel_id))
        if channel is None or channel.deleted:
            raise unknown("Channel", 10003)
        return channel

    def _channel_message(self, channel: Channel, message_id: str) -> StoredMessage:
        message = self._store.by_id.get(_int(message_id))
        if (
            message is None
            or message.channel_id != channel.id
            or message.deleted
            or message.ephemeral
        ):
            raise unknown("Message", 10008)
        return message

    def _require(
        self,
        channel: Channel,
        permissions: int,
        *,
        missing: Callable[[], ApiError] = missing_permissions,
    ) -> None:
        if channel.type == DM:
            return
        have = self._world.channel_permissions(channel, self._fake.bot_user.id)
        if have & permissions != permissions:
            raise missing()

    # Guilds

    async def get_guild(self, call: Call, guild_id: str) -> Reply:
        guild = self._guild(guild_id)
        payload = self._world.guild_payload(guild, joined_at=self._fake.now())
        for key in ("channels", "members", "threads", "presences", "voice_states", "joined_at"):
            payload.pop(key, None)
        if call.flag("with_counts"):
            payload["approximate_member_count"] = len(guild.members)
            payload["approximate_presence_count"] = 0
        return 200, payload

    async def get_guild_channels(self, call: Call, guild_id: str) -> Reply:
        guild = self._guild(guild_id)
        channels = [self._world.channels[c] for c in guild.channel_ids]
        return 200, [c.to_payload() for c in channels if not c.deleted]

    async def get_guild_roles(self, call: Call, guild_id: str) -> Reply:
        guild = self._guild(guild_id)
        return 200, [role.to_payload() for role in guild.roles.values()]

    async def get_member(self, call: Call, guild_id: str, user_id: str) -> Reply:
        guild = self._guild(guild_id)
        if _int(user_id) not in guild.members:
            raise unknown("Member", 10007)
        return 200, self._world.member_payload(guild, _int(user_id))

    def _guild(self, guild_id: str) -> Guild:
        guild = self._world.guilds.get(_int(guild_id))
        if guild is None:
            raise unknown("Guild", 10004)
        if self._fake.bot_user.id not in guild.members:
            raise missing_access()
        return guild


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_form(
            "id", "NUMBER_TYPE_COERCE", f"Value {value!r} is not snowflake."
        ) from None
