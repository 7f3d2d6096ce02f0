"""The fake Discord's shared state: world, records, addresses, lookups and payloads."""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web

from .clock import Clock
from .commands import CommandRegistry
from .errors import FakeDiscordError, NoBotConnected, ValidationFailed
from .gateway import INTENT_MESSAGE_CONTENT, Gateway, GatewayFrame, GatewaySession
from .messages import MessageStore
from .records import FakeInteraction, Payload, RecordedRequest, StoredAttachment, StoredMessage
from .rest import RestApi
from .world import Channel, Guild, Role, Snowflakes, User, World

if TYPE_CHECKING:
    from .faults import Hold, _Fault


API_PREFIX = "/api/v10"
_CDN_PREFIXES = ("/attachments/", "/ephemeral-attachments/")
_JSON = "application/json"
T = TypeVar("T")
# (method, path below /api/v10, JSON body) -> what is wrong with the body, if anything.
BodyCheck = Callable[[str, str, Any], list[str]]


class FakeState:
    """What every part of the fake shares: the world, the records, the addresses, the payloads.

    FakeDiscord (fake.py) sets all of it up; its parts (faults, world changes, interactions,
    HTTP) are mixins over this class, so each reads the same state under the same names.
    """

    now: Clock
    max_records: int | None
    snowflakes: Snowflakes
    world: World
    shard_count: int
    _token_digest: bytes | None
    bot_user: User
    application_id: int
    owner: User
    member: User
    guild: Guild
    bot_role: Role
    channel: Channel
    commands: CommandRegistry
    store: MessageStore
    gateway: Gateway
    requests: list[RecordedRequest]
    interactions: dict[int, FakeInteraction]
    violations: list[str]
    _by_token: dict[str, FakeInteraction]
    _faults: list[_Fault]
    _random_faults: tuple[_Fault, ...]
    _random_rate: float
    _random: random.Random
    _holds: list[Hold]
    _ready_gate: asyncio.Event | None
    _closing: asyncio.Event
    _condition: asyncio.Condition
    _rest: RestApi
    _check_body: BodyCheck | None
    _runner: web.AppRunner | None
    _port: int | None
    _host: str

    # Addresses

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT (also the CDN's origin)."""
        if self._port is None:
            raise FakeDiscordError("the fake Discord is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def api_url(self) -> str:
        """What `discord.http.Route.BASE` must be set to."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """What `DiscordWebSocket.DEFAULT_GATEWAY` must be; GET /gateway[/bot] answers it too."""
        return f"ws://{self._host}:{self._port}/gateway"

    # Records and waiting

    def messages(
        self, channel_id: int | Channel, *, include_deleted: bool = True
    ) -> list[StoredMessage]:
        """A channel's messages in creation order (ephemeral ones included), current state."""
        cid = channel_id.id if isinstance(channel_id, Channel) else channel_id
        found = self.store.in_channel(cid)
        return found if include_deleted else [m for m in found if not m.deleted]

    def message(self, message_id: int) -> StoredMessage:
        """One message by id."""
        try:
            return self.store.by_id[message_id]
        except KeyError:
            raise FakeDiscordError(f"no message {message_id}") from None

    def requests_to(self, method: str, pattern: str) -> list[RecordedRequest]:
        """Recorded requests whose method matches and whose path matches a glob."""
        return [
            r
            for r in self.requests
            if method in ("*", r.method) and fnmatch.fnmatchcase(r.path, pattern)
        ]

    @property
    def frames(self) -> list[GatewayFrame]:
        """Every gateway frame sent and received."""
        return self.gateway.frames

    @property
    def sessions(self) -> list[GatewaySession]:
        """Every gateway session (connected or resumable), oldest first."""
        return list(self.gateway.sessions.values())

    def downloads(self, attachment: StoredAttachment | Mapping[str, Any]) -> int:
        """How many times the CDN served an attachment."""
        url = attachment.url if isinstance(attachment, StoredAttachment) else str(attachment["url"])
        stored = self.store.cdn_lookup(_url_path(url))
        return stored.downloads if stored else 0

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 10) -> T:  # noqa: ASYNC109
        """Wait until predicate() is truthy (re-checked whenever the fake records something)."""
        async with self._condition:
            try:
                return await asyncio.wait_for(self._condition.wait_for(predicate), timeout)
            except TimeoutError:
                recent = "\n  ".join(str(r) for r in self.requests[-15:])
                raise TimeoutError(
                    f"fake Discord: condition not met within {timeout}s; last requests:\n  {recent}"
                ) from None

    async def wait_for_response(
        self,
        interaction: FakeInteraction,
        timeout: float = 10,  # noqa: ASYNC109
    ) -> FakeInteraction:
        """Wait until the bot acknowledged an interaction."""
        await self.wait_for(lambda: interaction.acknowledged, timeout)
        return interaction

    async def wait_until_ready(self, timeout: float = 10) -> GatewaySession:  # noqa: ASYNC109
        """Wait until a bot has identified (READY sent)."""
        sessions = await self.wait_for(self.gateway.connected_sessions, timeout)
        return sessions[-1]

    def assert_valid(self, *, include_unknown_routes: bool = True) -> None:
        """Raise listing every violation (a body the check refused, an unreadable body, an error of
        the fake) and every request to a route the fake does not know."""
        problems = list(self.violations)
        if include_unknown_routes:
            problems += [f"unknown route: {r.method} {r.path}" for r in self.requests if r.unknown]
        if problems:
            raise ValidationFailed("\n".join(problems))

    def _record(self, request: RecordedRequest) -> None:
        self.requests.append(request)
        if self.max_records is not None and len(self.requests) > self.max_records:
            del self.requests[: len(self.requests) - self.max_records]
            del self.gateway.frames[: max(0, len(self.gateway.frames) - self.max_records)]

    async def _changed(self) -> None:
        async with self._condition:
            self._condition.notify_all()

    # Lookups

    def _session_for(self, guild_id: int | None) -> GatewaySession:
        for session in reversed(self.gateway.connected_sessions()):
            if session.handles_guild(guild_id):
                return session
        raise NoBotConnected("no bot is connected to the fake gateway (or to the guild's shard)")

    def _user(self, user: User | int) -> User:
        user_id = user.id if isinstance(user, User) else user
        try:
            return self.world.users[user_id]
        except KeyError:
            raise FakeDiscordError(f"no user {user_id}") from None

    def _live_channel(self, channel: Channel | int) -> Channel:
        channel_id = channel.id if isinstance(channel, Channel) else channel
        found = self.world.channels.get(channel_id)
        if found is None or found.deleted:
            raise FakeDiscordError(f"channel {channel_id} does not exist (or was deleted)")
        return found

    def _message(self, message: StoredMessage | int) -> StoredMessage:
        return message if isinstance(message, StoredMessage) else self.message(message)

    # Payloads shared by REST and gateway

    def bot_guilds(self) -> list[Guild]:
        """Guilds the bot is a member of."""
        return [g for g in self.world.guilds.values() if self.bot_user.id in g.members]

    def dm_payload(self, channel: Channel) -> Payload:
        """A DM channel with its recipient."""
        recipient = self.world.users.get(channel.recipient_id or 0)
        return channel.to_payload(recipients=[recipient] if recipient else [])

    def application_payload(self) -> Payload:
        """GET /oauth2/applications/@me."""
        return {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "bot": self.bot_user.to_payload(),
            "owner": self.owner.to_payload(),
            "team": None,
            "rpc_origins": [],
            "approximate_guild_count": len(self.bot_guilds()),
            "interactions_endpoint_url": None,
            "integration_types_config": {"0": {}},
            "redirect_uris": [],
            "tags": [],
        }

    def _ready_payload(self, session: GatewaySession) -> Payload:
        user = self.bot_user.to_payload()
        user.update({"verified": True, "mfa_enabled": False})
        payload: Payload = {
            "v": 10,
            "user": user,
            "guilds": [
                {"id": str(g.id), "unavailable": True}
                for g in self.bot_guilds()
                if session.handles_guild(g.id)
            ],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["fake-discord"],
        }
        if session.shard is not None:
            payload["shard"] = list(session.shard)
        return payload

    def _guild_create_payload(self, guild: Guild) -> Payload:
        joined = guild.members[self.bot_user.id].joined_at
        return self.world.guild_payload(guild, joined_at=joined)

    async def broadcast_message(self, event: str, message: StoredMessage) -> None:
        """MESSAGE_CREATE/UPDATE/DELETE to bots with the intents for it (never for ephemeral)."""
        if message.ephemeral:
            return
        if event == "MESSAGE_DELETE":
            data: Payload = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id is not None:
                data["guild_id"] = str(message.guild_id)
        else:
            data = self.store.payload(message)
        dm = message.guild_id is None
        for session in self.gateway.connected_sessions():
            if not (session.handles_guild(message.guild_id) and session.wants(event, dm=dm)):
                continue
            sent = data
            if (
                event != "MESSAGE_DELETE"
                and not session.intents & INTENT_MESSAGE_CONTENT
                and not dm
                and message.author_id != self.bot_user.id
                and self.bot_user.id not in message.pings.users
            ):
                # Without the privileged intent, other people's guild messages arrive empty.
                sent = dict(data, content="", embeds=[], attachments=[], components=[])
            await self.gateway.dispatch(session, event, sent)

    def _token_ok(self, candidate: Any) -> bool:
        if not isinstance(candidate, str) or not candidate:
            return False
        if self._token_digest is None:
            return True
        digest = hashlib.sha256(candidate.encode()).digest()
        return hmac.compare_digest(digest, self._token_digest)


def _url_path(url: str) -> str:
    return urlsplit(url).path
