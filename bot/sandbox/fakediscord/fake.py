"""FakeDiscord: an aiohttp server on 127.0.0.1 speaking Discord's REST, gateway and CDN."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import ClassVar, Self

from aiohttp import web

from .changes import WorldChanges
from .clock import Clock, utc_now
from .commands import CommandRegistry
from .faults import Hold, _Fault
from .gateway import Gateway
from .interactions import Interactions
from .messages import MessageStore
from .records import FakeInteraction, RecordedRequest
from .rest import RestApi
from .server import HttpFront
from .state import BodyCheck
from .world import BOT_ROLE_DEFAULT, Snowflakes, World


class FakeDiscord(HttpFront, Interactions, WorldChanges):
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
    itself needs neither that file nor jsonschema).
    `token`: if given, only that bot token logs in.
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

    # Lifecycle

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
