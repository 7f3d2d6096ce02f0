"""FakeDiscord: an aiohttp server on 127.0.0.1 speaking Discord's REST, gateway and CDN."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar
from urllib.parse import urlsplit

from aiohttp import BodyPartReader, hdrs, web

from .clock import Clock, utc_now
from .commands import CHAT_INPUT, MESSAGE_COMMAND, CommandRegistry, build_chat_input
from .errors import ApiError, CommandMismatch, FakeDiscordError, NoBotConnected, ValidationFailed
from .gateway import INTENT_MESSAGE_CONTENT, Gateway, GatewayFrame, GatewaySession
from .messages import MessageStore
from .records import (
    FakeInteraction,
    Payload,
    RecordedRequest,
    StoredAttachment,
    StoredMessage,
    UploadedFile,
)
from .rest import Call, RestApi, match_route
from .world import (
    ADMINISTRATOR,
    BOT_ROLE_DEFAULT,
    DM,
    GUILD_FORUM,
    Channel,
    Guild,
    Overwrite,
    Role,
    Snowflakes,
    User,
    World,
)

_log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
_CDN_PREFIXES = ("/attachments/", "/ephemeral-attachments/")
_JSON = "application/json"
T = TypeVar("T")
# (method, path below /api/v10, JSON body) -> what is wrong with the body, if anything.
BodyCheck = Callable[[str, str, Any], list[str]]


@dataclass
class _Fault:
    method: str
    pattern: str | re.Pattern[str]
    status: int
    code: int | None
    retry_after: float | None
    times: int
    via: bool
    global_: bool
    message: str | None
    after: bool = False  # handled first (Discord did the work), then answered with the error

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        if isinstance(self.pattern, re.Pattern):
            return self.pattern.fullmatch(path) is not None
        return fnmatch.fnmatchcase(path, self.pattern)

    def error(self, now: datetime) -> ApiError:
        if self.status == 429:
            retry_after = 0.0 if self.retry_after is None else self.retry_after
            headers = {"Retry-After": str(max(1, round(retry_after)))}
            if self.via:
                headers["Via"] = "1.1 google"
            if self.global_:
                headers.update({"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"})
            else:
                # A complete set, or discord.py's bucket bookkeeping goes wrong.
                headers.update(
                    {
                        "X-RateLimit-Limit": "5",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": f"{now.timestamp() + retry_after:.3f}",
                        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                        "X-RateLimit-Bucket": _bucket(self.pattern),
                        "X-RateLimit-Scope": "user",
                    }
                )
            return ApiError(
                429,
                self.code,
                self.message or "You are being rate limited.",
                headers=headers,
                extra={"retry_after": retry_after, "global": self.global_},
            )
        if self.status == 403:
            code = 50013 if self.code is None else self.code
            return ApiError(403, code, self.message or "Missing Permissions")
        code = 0 if self.code is None else self.code
        return ApiError(self.status, code, self.message or f"{self.status}: injected failure")


@dataclass(frozen=True)
class RandomFault:
    """A failure `fail_randomly` may answer a matching request with; the fields are fail_next's."""

    method: str
    path_pattern: str | re.Pattern[str]
    status: int
    code: int | None = None
    retry_after: float | None = None
    via: bool = True
    global_: bool = False
    message: str | None = None


class Hold:
    """One request the fake keeps waiting, so a test can act (e.g. kill the bot) at that moment.

    With `before`, the request waits before Discord acts on it: nothing happened yet. Without,
    it is handled (the message exists) and only the answer waits: the bot cannot know it
    happened. `release()` lets it go on; `drop()` closes the connection instead (before:
    unhandled; after: handled but unanswered), as when the bot's process died.
    """

    def __init__(
        self, method: str, pattern: str | re.Pattern[str], *, before: bool, closing: asyncio.Event
    ) -> None:
        self.method = method
        self.pattern = pattern
        self.before = before
        self.path: str | None = None
        self.dropped = False
        self._reached = asyncio.Event()
        self._go = asyncio.Event()
        self._closing = closing

    def __repr__(self) -> str:
        when = "before" if self.before else "after"
        return f"<Hold {self.method} {self.pattern} {when} reached={self._reached.is_set()}>"

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        if isinstance(self.pattern, re.Pattern):
            return self.pattern.fullmatch(path) is not None
        return fnmatch.fnmatchcase(path, self.pattern)

    @property
    def reached(self) -> bool:
        """Whether a matching request arrived and is being held."""
        return self._reached.is_set()

    async def wait(self, timeout: float = 10) -> str:  # noqa: ASYNC109
        """Wait until a matching request is held; the path it was sent to."""
        try:
            await asyncio.wait_for(self._reached.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no request matched {self!r} within {timeout}s") from None
        assert self.path is not None
        return self.path

    def release(self) -> None:
        """Let the held request go on as if nothing happened."""
        self._go.set()

    def drop(self) -> None:
        """Close the held request's connection without (further) handling or an answer."""
        self.dropped = True
        self._go.set()

    async def _hold(self, path: str) -> bool:
        """Hold a request here; True if it should go on, False if it was dropped."""
        self.path = path
        self._reached.set()
        go = asyncio.ensure_future(self._go.wait())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({go, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            go.cancel()
            closing.cancel()
        if not self._go.is_set():
            self.dropped = True
        return not self.dropped


class FakeDiscord:
    """A local Discord for tests and the sandbox: world, REST, gateway, CDN, records and faults.

    Point discord.py at it before the bot starts with `fake.patch_discord_py()`, which sets the
    two knobs: `discord.http.Route.BASE = fake.api_url` (every REST and webhook call) and
    `DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)` (what a plain `Client`
    connects to). An `AutoShardedClient` without a fixed shard_count asks `GET /gateway/bot`
    instead, which answers with the same URL; READY's `resume_gateway_url` points back here too.

        async with FakeDiscord(check_body=discord_body_check()) as fake:
            with fake.patch_discord_py():
                ...start the bot, await bot.tree.sync(guild=...)...
                hit = await fake.command(fake.member, fake.channel, "pika text", {"prompt": "x"})
                await fake.wait_for(lambda: hit.followups)
            fake.assert_valid()

    The default world: guild `fake.guild` owned by `fake.owner`, text channel `fake.channel`,
    member `fake.member`, and the bot `fake.bot_user` (application id = bot user id) holding
    `fake.bot_role`.

    `check_body`: called with every JSON body; what it returns is a violation (the tests pass
    the check against Discord's OpenAPI description, tests/fakediscord/openapi.py, so the fake
    itself needs neither that file nor jsonschema). `token`: if given, only that bot token logs
    in.
    `max_records`: keep only the newest requests/frames (for a long-running sandbox).
    """

    # Called with every fake as it closes, records complete: a test session registers its
    # whole-suite checks here (no secret in any request, allowed_mentions on every message).
    on_close: ClassVar[list[Callable[[FakeDiscord], None]]] = []

    def __init__(
        self,
        *,
        check_body: BodyCheck | None = None,
        clock: Clock | None = None,
        token: str | None = None,
        shard_count: int = 1,
        heartbeat_interval_ms: int = 41250,
        bot_name: str = "Pika",
        max_records: int | None = None,
    ) -> None:
        self.now: Clock = clock or utc_now
        # A long-running sandbox keeps only the newest records (tests keep everything).
        self.max_records = max_records
        self.snowflakes = Snowflakes(self.now)
        self.world = World(self.snowflakes)
        self.shard_count = shard_count
        # Only a digest, so the token never sits in the fake's memory or records.
        self._token_digest = hashlib.sha256(token.encode()).digest() if token else None

        self.bot_user = self.world.add_user(bot_name, bot=True)
        self.application_id = self.bot_user.id
        self.owner = self.world.add_user("owner")
        self.member = self.world.add_user("alice")
        self.guild = self.world.add_guild("Test Server", owner_id=self.owner.id)
        self.bot_role = self.world.add_role(
            self.guild.id, bot_name, BOT_ROLE_DEFAULT, managed=True, bot_id=self.bot_user.id
        )
        self.world.add_member(self.guild.id, self.bot_user.id, roles=[self.bot_role.id])
        self.world.add_member(self.guild.id, self.member.id)
        self.channel = self.world.add_text_channel(self.guild.id, "general")

        self.commands = CommandRegistry(self.application_id, self.snowflakes)
        self.store = MessageStore(self.world, self.snowflakes, self.now, lambda: self.base_url)
        self.gateway = Gateway(self, heartbeat_interval_ms=heartbeat_interval_ms)
        self.requests: list[RecordedRequest] = []
        self.interactions: dict[int, FakeInteraction] = {}
        self.violations: list[str] = []
        self._by_token: dict[str, FakeInteraction] = {}
        self._faults: list[_Fault] = []
        self._random_faults: tuple[_Fault, ...] = ()
        self._random_rate = 0.0
        self._random = random.Random()
        self._holds: list[Hold] = []
        self._ready_gate: asyncio.Event | None = None
        self._closing = asyncio.Event()
        self._condition = asyncio.Condition()
        self._rest = RestApi(self)
        self._check_body = check_body
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        return f"<FakeDiscord {self.base_url if self._port else 'not started'}>"

    # Lifecycle and addresses

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on host:port (port 0 picks a free one)."""
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        address = self._runner.addresses[0]
        self._host, self._port = address[0], int(address[1])

    async def close(self) -> None:
        """Close bot websockets and stop serving (held requests are dropped), then hand the
        fake to every `on_close` hook."""
        self._closing.set()
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for hook in list(FakeDiscord.on_close):
            hook(self)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

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

    @contextlib.contextmanager
    def patch_discord_py(self, *, share_clock: bool = False) -> Iterator[None]:
        """Point discord.py's REST base and default gateway at this fake, restoring them after.

        With `share_clock`, `discord.utils.utcnow` follows the fake's clock too, so that
        `Interaction.is_expired()` agrees with the fake after a MovableClock jump (this also
        moves discord.ext.tasks schedules and other utcnow users).
        """
        import discord.gateway
        import discord.http
        import discord.utils
        import yarl

        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        old_utcnow = discord.utils.utcnow
        discord.http.Route.BASE = self.api_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        if share_clock:
            setattr(discord.utils, "utcnow", self.now)  # noqa: B010
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
            setattr(discord.utils, "utcnow", old_utcnow)  # noqa: B010

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

    # Faults

    def fail_next(
        self,
        method: str,
        path_pattern: str | re.Pattern[str],
        status: int,
        *,
        code: int | None = None,
        retry_after: float | None = None,
        times: int = 1,
        via: bool = True,
        global_: bool = False,
        message: str | None = None,
        after: bool = False,
    ) -> None:
        """Answer the next `times` matching requests with an error instead of handling them.

        With `after`, each is handled first and only its answer is the error: Discord created
        the message, then answered e.g. 502, so a client that retries blindly posts it twice.

        `path_pattern` is a glob (or compiled regex) over the API path without /api/v10, e.g.
        "/channels/*/messages", or a CDN path like "/ephemeral-attachments/*". A 429 carries JSON
        {message, retry_after, global}, a `Via` header unless via=False, and complete rate-limit
        headers (or only the global ones); a 403 defaults to code 50013.
        """
        self._faults.append(
            _Fault(
                method.upper(),
                path_pattern,
                status,
                code,
                retry_after,
                times,
                via,
                global_,
                message,
                after,
            )
        )

    def hold_next(
        self, method: str, path_pattern: str | re.Pattern[str], *, before: bool = True
    ) -> Hold:
        """Hold the next matching API request (glob or regex over the path without /api/v10).

        `before=True` holds it before it is handled; `before=False` handles it and holds the
        answer. Await `hold.wait()`, act, then `hold.release()` or `hold.drop()`; close()
        drops whatever is still held.
        """
        hold = Hold(method.upper(), path_pattern, before=before, closing=self._closing)
        self._holds.append(hold)
        return hold

    def hold_ready(self) -> asyncio.Event:
        """Keep the next bots that identify waiting for READY (and their guilds) until the
        returned event is set: a bot that is up, with its REST working, but knows no guild."""
        self._ready_gate = asyncio.Event()
        return self._ready_gate

    async def _ready_allowed(self) -> None:
        gate = self._ready_gate
        if gate is None or gate.is_set():
            return
        opened = asyncio.ensure_future(gate.wait())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({opened, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
            closing.cancel()

    def _take_hold(self, method: str, path: str) -> Hold | None:
        for hold in self._holds:
            if hold.matches(method, path):
                self._holds.remove(hold)
                return hold
        return None

    def fail_randomly(self, rate: float, faults: Sequence[RandomFault], *, seed: int) -> None:
        """From now on, each request that one of `faults` matches fails with probability `rate`,
        by one of the matching faults picked at random; fail_next's faults come first. Seeded,
        so a failing soak run can be replayed; rate 0 stops it."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        self._random_rate = rate
        self._random = random.Random(seed)
        self._random_faults = tuple(
            _Fault(
                f.method.upper(),
                f.path_pattern,
                f.status,
                f.code,
                f.retry_after,
                1,
                f.via,
                f.global_,
                f.message,
            )
            for f in faults
        )

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        candidates = [fault for fault in self._random_faults if fault.matches(method, path)]
        if candidates and self._random.random() < self._random_rate:
            return self._random.choice(candidates)
        return None

    # World changes made by tests (connected bots receive the matching gateway events)

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

    # Interactions driven by tests

    async def command(
        self,
        user: User | int,
        channel: Channel | int,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        locale: str = "en-US",
        created_at: datetime | None = None,
    ) -> FakeInteraction:
        """Invoke a synced slash command ("pika text", options by name) as a member; raises
        CommandMismatch if the bot did not sync that command/option or would reject the value."""
        user_obj, channel_obj = self._user(user), self._live_channel(channel)
        parts = name.split()
        command = self.commands.find(parts[0], CHAT_INPUT, channel_obj.guild_id)
        self._check_can_use(command, channel_obj, user_obj)
        built = build_chat_input(
            command,
            parts[1:],
            options or {},
            world=self.world,
            channel=channel_obj,
            user_id=user_obj.id,
        )
        data: Payload = {"id": command["id"], "name": command["name"], "type": CHAT_INPUT}
        if built.options:
            data["options"] = built.options
        if built.resolved:
            data["resolved"] = built.resolved
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return await self._interact(
            2, user_obj, channel_obj, data, locale=locale, created_at=created_at
        )

    async def message_command(
        self,
        user: User | int,
        channel: Channel | int,
        name: str,
        target_message: StoredMessage | int,
        *,
        locale: str = "en-US",
        created_at: datetime | None = None,
    ) -> FakeInteraction:
        """Invoke a synced message context-menu command on a message."""
        user_obj, channel_obj = self._user(user), self._live_channel(channel)
        target = self._message(target_message)
        command = self.commands.find(name, MESSAGE_COMMAND, channel_obj.guild_id)
        self._check_can_use(command, channel_obj, user_obj)
        data: Payload = {
            "id": command["id"],
            "name": command["name"],
            "type": MESSAGE_COMMAND,
            "target_id": str(target.id),
            "resolved": {"messages": {str(target.id): self.store.payload(target)}},
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return await self._interact(
            2, user_obj, channel_obj, data, locale=locale, created_at=created_at
        )

    async def click(
        self,
        user: User | int,
        message: StoredMessage | int,
        custom_id: str,
        *,
        values: Sequence[str] = (),
        locale: str = "en-US",
        created_at: datetime | None = None,
    ) -> FakeInteraction:
        """Press a button (or pick select `values`) on a stored message; the click echoes it."""
        target = self._message(message)
        if target.deleted:
            raise FakeDiscordError(f"message {target.id} is deleted")
        component = target.find_component(custom_id)
        if component is None:
            raise FakeDiscordError(
                f"message {target.id} has no component with custom_id {custom_id!r}"
            )
        if component.get("disabled"):
            raise FakeDiscordError(f"component {custom_id!r} is disabled")
        data: Payload = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] != 2:
            data["values"] = list(values)
        channel = self._live_channel(target.channel_id)
        return await self._interact(
            3,
            self._user(user),
            channel,
            data,
            message=target,
            locale=locale,
            created_at=created_at,
        )

    async def submit_modal(
        self,
        user: User | int,
        opened_by: FakeInteraction,
        custom_id: str | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        locale: str = "en-US",
        created_at: datetime | None = None,
    ) -> FakeInteraction:
        """Submit the modal the bot opened in answer to `opened_by`, with values by input custom_id
        (str for text inputs, lists of str for selects, lists of fake.attachment() for uploads)."""
        modal = opened_by.modal
        if modal is None:
            raise FakeDiscordError(f"the bot opened no modal for interaction {opened_by.id}")
        if custom_id is not None and custom_id != modal["custom_id"]:
            raise FakeDiscordError(
                f"the bot's modal has custom_id {modal['custom_id']!r}, not {custom_id!r}"
            )
        given = dict(values or {})
        resolved: dict[str, dict[str, Payload]] = {}
        components = [_submitted(c, given, resolved) for c in modal["components"]]
        if given:
            raise FakeDiscordError(f"the modal has no inputs named {sorted(given)}")
        data: Payload = {"custom_id": modal["custom_id"], "components": components}
        if resolved:
            data["resolved"] = resolved
        channel = self._live_channel(opened_by.channel_id)
        return await self._interact(
            5,
            self._user(user),
            channel,
            data,
            message=opened_by.source_message,
            locale=locale,
            created_at=created_at,
        )

    def interaction_by_token(self, token: str) -> FakeInteraction | None:
        """The interaction a webhook token belongs to."""
        return self._by_token.get(token)

    async def _interact(
        self,
        itype: int,
        user: User,
        channel: Channel,
        data: Payload,
        *,
        message: StoredMessage | None = None,
        locale: str,
        created_at: datetime | None,
    ) -> FakeInteraction:
        created = created_at or self.now()
        interaction_id = self.snowflakes.next(created)
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        guild = self.world.guild_of(channel)
        payload: Payload = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "app_permissions": str(self.world.channel_permissions(channel, self.bot_user.id)),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.world.attachment_size_limit(channel),
            "channel_id": str(channel.id),
            "context": 0 if guild else 1,
            "authorizing_integration_owners": {"0": str(guild.id) if guild else "0"},
        }
        if guild is not None:
            if user.id not in guild.members:
                raise FakeDiscordError(f"{user.username} is not a member of {guild.name}")
            permissions = self.world.channel_permissions(channel, user.id)
            channel_payload = channel.to_payload()
            channel_payload["permissions"] = str(permissions)
            payload.update(
                {
                    "guild_id": str(guild.id),
                    "guild": {
                        "id": str(guild.id),
                        "locale": guild.preferred_locale,
                        "features": [],
                    },
                    "guild_locale": guild.preferred_locale,
                    "member": self.world.member_payload(guild, user.id, permissions),
                    "channel": channel_payload,
                }
            )
        else:
            payload["user"] = user.to_payload()
            payload["channel"] = self.dm_payload(channel)
        if message is not None:
            payload["message"] = self.store.payload(message)
        session = self._session_for(guild.id if guild else None)
        interaction = FakeInteraction(
            id=interaction_id,
            token=token,
            type=itype,
            payload=payload,
            created_at=created,
            user_id=user.id,
            channel_id=channel.id,
            guild_id=guild.id if guild else None,
            source_message=message,
        )
        self.interactions[interaction_id] = interaction
        self._by_token[token] = interaction
        await self.gateway.dispatch(session, "INTERACTION_CREATE", payload)
        await self._changed()
        return interaction

    def _session_for(self, guild_id: int | None) -> GatewaySession:
        for session in reversed(self.gateway.connected_sessions()):
            if session.handles_guild(guild_id):
                return session
        raise NoBotConnected("no bot is connected to the fake gateway (or to the guild's shard)")

    def _check_can_use(self, command: Payload, channel: Channel, user: User) -> None:
        context = 1 if channel.type == DM else 0
        contexts = command.get("contexts")
        if contexts is not None and context not in contexts:
            raise CommandMismatch(f"{command['name']!r} is not available in context {context}")
        if context == 1 and command.get("dm_permission") is False:
            raise CommandMismatch(f"{command['name']!r} is not available in DMs")
        required = command.get("default_member_permissions")
        if context == 0 and required is not None:
            have = self.world.channel_permissions(channel, user.id)
            needed = int(required)
            if have & needed != needed and not have & ADMINISTRATOR:
                raise CommandMismatch(
                    f"{command['name']!r} is hidden from {user.username} "
                    f"(default_member_permissions={needed})"
                )

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

    # HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if (
            path.rstrip("/") == "/gateway"
            and request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        ):
            return await self.gateway.handle(request)
        if path.startswith(API_PREFIX + "/"):
            return await self._handle_api(request, path[len(API_PREFIX) :])
        if path.startswith(_CDN_PREFIXES):
            return await self._handle_cdn(request)
        await self._record_plain(request, path, 404, api=False, route=None)
        return web.Response(status=404, text="404: Not Found")

    async def _handle_api(self, request: web.Request, path: str) -> web.StreamResponse:
        method = request.method.upper()
        auth = request.headers.get(hdrs.AUTHORIZATION, "")
        bot_auth = auth.startswith("Bot ")
        violations: list[str] = []
        try:
            body, files = await _read_body(request)
        except ValueError as exc:
            body, files = None, ()
            violations.append(f"{method} {path}: unreadable body: {exc}")
        call = Call(method, path, dict(request.query), body, files, bot_auth)
        matched = match_route(method, path)
        hold = self._take_hold(method, path)
        if hold is not None and hold.before and not await hold._hold(path):
            return _dropped(request)
        if self._check_body is not None and body is not None:
            violations += self._check_body(method, path, body)
        status: int
        answer: Any
        headers: dict[str, str] = {}
        try:
            fault = self._take_fault(method, path)
            if fault is not None and not fault.after:
                raise fault.error(self.now())
            if matched is None:
                _log.warning("fake Discord: unknown route %s %s (answered 404)", method, path)
                raise ApiError(404, 0, "404: Not Found")
            route, params = matched
            if route.bot and not (bot_auth and self._token_ok(auth[4:])):
                raise ApiError(401, 0, "401: Unauthorized")
            status, answer = await self._rest.handler(route)(call, **params)
            if fault is not None:
                raise fault.error(self.now())
        except ApiError as error:
            status, answer, headers = error.status, error.body(), error.headers
        except Exception as exc:
            # A bug in the fake: answer 400 (a 500 would make discord.py retry for ~25 s) and
            # make assert_valid() fail with it.
            _log.exception("fake Discord: internal error on %s %s", method, path)
            violations.append(f"{method} {path}: fake Discord internal error: {exc!r}")
            status, answer = 400, {"message": f"fake Discord internal error: {exc!r}", "code": 0}
        self.violations += violations
        self._record(
            RecordedRequest(
                method=method,
                path=path,
                query=dict(request.query),
                json=body,
                files=files,
                headers=_safe_headers(request),
                bot_auth=bot_auth,
                status=status,
                response=answer,
                at=self.now(),
                route=f"{matched[0].method} {matched[0].template}" if matched else None,
                violations=tuple(violations),
            )
        )
        await self._changed()
        if hold is not None and not hold.before and not await hold._hold(path):
            return _dropped(request)
        if answer is None:
            return web.Response(status=status, headers=headers)
        # Exactly "application/json": discord.py compares the whole header value.
        headers = {**headers, "Content-Type": _JSON}
        return web.Response(status=status, body=json.dumps(answer).encode(), headers=headers)

    async def _handle_cdn(self, request: web.Request) -> web.StreamResponse:
        method = request.method.upper()
        fault = self._take_fault(method, request.path)
        if fault is not None:
            error = fault.error(self.now())
            await self._record_plain(request, request.path, error.status, api=False, route="CDN")
            return web.Response(status=error.status, text=error.message, headers=error.headers)
        stored = self.store.cdn_lookup(request.path)
        if stored is None or method not in ("GET", "HEAD"):
            await self._record_plain(request, request.path, 404, api=False, route="CDN")
            return web.Response(status=404, text="404: Not Found")
        if method == "GET":
            stored.downloads += 1
        await self._record_plain(request, request.path, 200, api=False, route="CDN")
        return web.Response(
            status=200,
            body=stored.data if method == "GET" else None,
            headers={"Content-Type": stored.content_type or "application/octet-stream"},
        )

    async def _record_plain(
        self, request: web.Request, path: str, status: int, *, api: bool, route: str | None
    ) -> None:
        self._record(
            RecordedRequest(
                method=request.method.upper(),
                path=path,
                query=dict(request.query),
                json=None,
                files=(),
                headers=_safe_headers(request),
                bot_auth=request.headers.get(hdrs.AUTHORIZATION, "").startswith("Bot "),
                status=status,
                response=None,
                at=self.now(),
                route=route,
                api=api,
            )
        )
        await self._changed()


def _dropped(request: web.Request) -> web.Response:
    """Close the connection without an answer (the response returned is never sent)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)


def _bucket(pattern: str | re.Pattern[str]) -> str:
    return "fake" + hashlib.sha256(str(pattern).encode()).hexdigest()[:12]


async def _read_body(request: web.Request) -> tuple[Any, tuple[UploadedFile, ...]]:
    content_type = request.content_type
    if content_type.startswith("multipart/"):
        payload: Any = None
        files: list[UploadedFile] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            data = await part.read(decode=False)
            if name == "payload_json":
                payload = json.loads(data.decode("utf-8"))
            elif name.startswith("files[") or name.startswith("file"):
                files.append(
                    UploadedFile(
                        field=name,
                        filename=part.filename or name,
                        content_type=part.headers.get(hdrs.CONTENT_TYPE),
                        data=bytes(data),
                    )
                )
        return payload, tuple(files)
    raw = await request.read()
    if not raw:
        return None, ()
    if content_type == _JSON:
        return json.loads(raw.decode("utf-8")), ()
    raise ValueError(f"unsupported Content-Type {content_type!r}")


def _safe_headers(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() != "authorization"}


def _url_path(url: str) -> str:
    return urlsplit(url).path


def _submitted(
    component: Payload, given: dict[str, Any], resolved: dict[str, dict[str, Payload]]
) -> Payload:
    """The modal-submit form of one modal component, consuming values from `given`."""
    ctype = component.get("type")
    out: Payload = {"type": ctype}
    if "id" in component:
        out["id"] = component["id"]
    if ctype == 1:
        out["components"] = [
            _submitted(c, given, resolved) for c in component.get("components", [])
        ]
        return out
    if ctype == 18:
        out["component"] = _submitted(component["component"], given, resolved)
        return out
    custom_id = component.get("custom_id")
    if custom_id is None:
        return out
    out["custom_id"] = custom_id
    required = component.get("required", True)
    if ctype == 4:
        value = given.pop(custom_id, component.get("value") or "")
        if not isinstance(value, str):
            raise FakeDiscordError(f"text input {custom_id!r} takes a str, got {value!r}")
        if required and not value:
            raise FakeDiscordError(f"text input {custom_id!r} is required")
        low, high = component.get("min_length", 0), component.get("max_length", 4000)
        if value and not low <= len(value) <= high:
            raise FakeDiscordError(f"text input {custom_id!r}: length must be {low}..{high}")
        out["value"] = value
    elif ctype == 19:
        uploads = list(given.pop(custom_id, []))
        if required and not uploads:
            raise FakeDiscordError(f"file upload {custom_id!r} is required")
        for upload in uploads:
            resolved.setdefault("attachments", {})[str(upload["id"])] = dict(upload)
        out["values"] = [str(u["id"]) for u in uploads]
    else:
        out["values"] = [str(v) for v in given.pop(custom_id, [])]
        out["component_type"] = ctype
    return out
