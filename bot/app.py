"""The bot itself: a discord.py Bot that receives its dependencies and wires the jobs to Discord."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.jobs import Refusal
from bot.jobs.discord.delivery import DiscordMessenger
from bot.jobs.policy import JobStillRuns
from bot.ops.health import Gateway, HealthServer, JobsNow, StoredNumbers
from bot.ops.metrics import Metrics
from bot.ops.webhooks import WebhookServer, webhook_server
from bot.services import Services

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.pika", "cogs.buttons", "cogs.admin", "cogs.guilds")
COMMAND_HASH_KEY = "command_hash"


def point_discord_at(api_url: str, gateway_url: str) -> None:
    """Send discord.py's REST and gateway traffic to these URLs (a proxy, or a fake Discord).

    This holds for every client in the process: discord.py offers no per-client way. Every REST
    and webhook URL is built from the class attribute `Route.BASE` when the route is made
    (`HTTPClient`, interaction webhooks and followups alike), and a plain `Client` connects to
    the class attribute `DiscordWebSocket.DEFAULT_GATEWAY`; neither a connector nor `proxy=`
    changes the URL. The bot's processes run one client, so the one place that sets them is
    here (the fake Discord's `patch_discord_py` does the same for tests, and undoes it).
    """
    discord.http.Route.BASE = api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


INTERACTION_DRAIN_S = 5.0
# discord.py names the tasks that run slash commands, menus and component callbacks, and offers
# no public way to know when they end. The names are not API: tests/test_app.py checks them
# against the installed discord.py, so an upgrade that renames one fails there, not in a stop.
INTERACTION_TASKS = (
    "CommandTree-invoker",
    "discord-ui-view-dispatch-",
    "discord-ui-dynamic-item-",
    "discord-ui-modal-dispatch",
)


async def drain_interactions(limit_s: float) -> None:
    """Wait (at most `limit_s`) for the interactions being handled right now to finish."""
    current = asyncio.current_task()
    running = [
        task
        for task in asyncio.all_tasks()
        if task is not current and task.get_name().startswith(INTERACTION_TASKS)
    ]
    if running:
        await asyncio.wait(running, timeout=limit_s)


def intents() -> discord.Intents:
    """Only what the bot needs: guilds (channels, roles, permissions). No privileged intent."""
    chosen = discord.Intents.none()
    chosen.guilds = True
    return chosen


class PikaBot(commands.Bot):
    """The Pika bot. Everything it depends on is passed in, and closed by whoever made it."""

    def __init__(self, services: Services, *, run_jobs: bool = True, **options: Any) -> None:
        """`run_jobs=False` (sync) loads the commands but starts no jobs, endpoints or sync."""
        # Counts discord.py's answers from Discord (429s among them) for /metrics.
        options.setdefault("http_trace", services.metrics.discord_trace())
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            **options,
        )
        settings = services.settings
        self.services = services
        self.settings = settings
        self.store = services.store
        self.fal = services.fal
        self.http_client = services.http
        self.clock = services.clock
        self.media_limits = services.media_limits
        self.run_jobs = run_jobs
        self.closing = asyncio.Event()  # set as soon as a stop begins
        self.metrics = services.metrics
        self.health: HealthServer | None = None
        self.webhooks: WebhookServer | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self.cache = services.cache
        self.intake = services.intake
        self.retention = services.retention
        # The one part of the jobs that speaks to Discord is the bot's own.
        self.jobs = services.jobs(
            DiscordMessenger(
                self, default_upload_limit=settings.default_upload_limit, clock=services.clock
            ),
            guild_gone=self.guild_gone,
        )
        self.tree.error(self.on_app_command_error)

    def guild_gone(self, guild_id: int) -> bool:
        """Whether the bot knows it is no longer in this server (never while its guilds load:
        a server that is down stays in the cache, marked unavailable)."""
        return self.is_ready() and self.get_guild(guild_id) is None

    async def setup_hook(self) -> None:
        settings = self.settings
        settings.output_dir.mkdir(parents=True, exist_ok=True)
        settings.cache_dir.mkdir(parents=True, exist_ok=True)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.run_jobs:
            await self.jobs.start()
            self._retention_task = asyncio.create_task(self.retention.run(), name="pika-retention")
            if settings.http_port is not None:
                self.health = HealthServer(
                    BotHealth(self), host=settings.http_host, port=settings.http_port
                )
                await self.health.start()
            if settings.fal_webhook_url is not None:
                self.webhooks = webhook_server(
                    settings,
                    http=self.http_client,
                    on_event=lambda event: self.jobs.fal_webhook(event.request_id),
                )
                await self.webhooks.start()
            await self.sync_commands(force=False)

    async def close(self) -> None:
        self.closing.set()
        # Let members' commands and clicks that are already running finish (a few seconds at
        # most) before the store closes under them; the jobs they started are in the database.
        await drain_interactions(INTERACTION_DRAIN_S)
        if self.health is not None:
            await self.health.close()
        if self.webhooks is not None:
            await self.webhooks.close()
        if self._retention_task is not None:
            self._retention_task.cancel()
            await asyncio.gather(self._retention_task, return_exceptions=True)
        await self.jobs.close()
        await super().close()

    # -- command sync ------------------------------------------------------------------------

    def command_definitions(
        self, guild: discord.abc.Snowflake | None = None
    ) -> list[dict[str, Any]]:
        """The JSON of every command as it would be synced."""
        return [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]

    def command_hash(self) -> str:
        """A fingerprint of the command definitions: a sync is needed when it changes."""
        text = json.dumps(self.command_definitions(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    async def sync_commands(self, *, force: bool, guild_id: int | None = None) -> bool:
        """Sync the slash commands if their definitions changed since the last sync (or forced).

        A guild sync copies the global commands into that guild (instant, for testing).
        """
        if guild_id is not None:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
            log.info("commands synced to guild %s", guild_id)
            return True
        digest = self.command_hash()
        if not force and await self.store.meta.get(COMMAND_HASH_KEY) == digest:
            log.info("commands unchanged since the last sync; not syncing")
            return False
        await self.tree.sync()
        await self.store.meta.set(COMMAND_HASH_KEY, digest)
        log.info("commands synced (definition %s)", digest[:12])
        return True

    # -- errors ------------------------------------------------------------------------------

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Every error of a slash command or menu ends here."""
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await self.report_error(interaction, cause)

    async def report_error(self, interaction: discord.Interaction, cause: BaseException) -> None:
        """The one place that turns an error into a reply: known ones clearly, others with a
        reference the member can quote (and the operator can find in the log)."""
        if isinstance(cause, Refusal):
            await refuse(interaction, str(getattr(cause, "message", None) or cause))
            return
        if isinstance(cause, app_commands.CheckFailure):
            await refuse(interaction, str(cause) or "You can't use this command here.")
            return
        if isinstance(cause, JobStillRuns):
            # The job is accepted: its reply stays, and the member is told it runs, not that
            # nothing was charged.
            reference = secrets.token_hex(4)
            log.error(
                "job %s: failed after it was accepted (ref %s)",
                cause.job_id,
                reference,
                exc_info=cause.__cause__ or cause,
                extra={"guild_id": interaction.guild_id, "user_id": interaction.user.id},
            )
            await refuse(
                interaction,
                f"{cause} If it keeps happening, give the bot's operator this reference: "
                f"`{reference}`.",
                keep_reply=True,
            )
            return
        reference = secrets.token_hex(4)
        command = interaction.command.qualified_name if interaction.command else "?"
        log.error(
            "command %s failed (ref %s, guild %s, user %s)",
            command,
            reference,
            interaction.guild_id,
            interaction.user.id,
            exc_info=cause,
            extra={"guild_id": interaction.guild_id, "user_id": interaction.user.id},
        )
        await refuse(
            interaction,
            f"Something went wrong on the bot's side. Nothing was charged. If it keeps happening, "
            f"give the bot's operator this reference: `{reference}`.",
        )


class BotHealth:
    """The bot as the health endpoint reads it (`bot.ops.health.Watched`)."""

    def __init__(self, bot: PikaBot) -> None:
        self._bot = bot

    @property
    def metrics(self) -> Metrics:
        return self._bot.metrics

    def gateway(self) -> Gateway:
        bot = self._bot
        ws = bot.ws
        return Gateway(
            closed=bot.is_closed(),
            ready=bot.is_ready(),
            open=ws is not None and ws.open,
        )

    def latency(self) -> float:
        return self._bot.latency

    def jobs(self) -> JobsNow:
        jobs = self._bot.jobs
        return JobsNow(
            runs_jobs=self._bot.run_jobs,
            alive=jobs.alive,
            waiting=jobs.waiting_count,
            at_fal=jobs.at_fal_count,
            fal_concurrency=jobs.limits.fal_concurrency,
            global_daily_budget=jobs.limits.global_daily_budget,
        )

    async def write_probe(self, key: str, value: str) -> None:
        await self._bot.store.meta.set(key, value)

    async def stored_numbers(self) -> StoredNumbers:
        store = self._bot.store
        day = self._bot.jobs.accounts.period()
        return StoredNumbers(await store.jobs.counts(), day, await store.ledger.global_spend(day))


async def refuse(
    interaction: discord.Interaction, message: str, *, keep_reply: bool = False
) -> None:
    """Tell only the member, whatever state the interaction is in.

    Before the acknowledgement this is a true ephemeral reply. After a public defer, the
    deferred reply is deleted first: the first followup of a deferred reply inherits its
    visibility, so it would otherwise be public. `keep_reply` leaves it (an accepted job's
    progress reply).
    """
    mentions = discord.AllowedMentions.none()
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(
                message, ephemeral=True, allowed_mentions=mentions
            )
            return
        if interaction.is_expired():
            log.info("interaction %s expired before its refusal could be sent", interaction.id)
            return
        if not keep_reply:
            try:
                await interaction.delete_original_response()
            except discord.HTTPException:
                pass
        await interaction.followup.send(message, ephemeral=True, allowed_mentions=mentions)
    except discord.HTTPException as error:
        log.warning("could not send a refusal for interaction %s: %s", interaction.id, error)
