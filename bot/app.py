"""The bot itself: a discord.py Bot that receives its dependencies and wires the jobs to Discord."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import discord
import httpx
import yarl
from discord import app_commands
from discord.ext import commands

from bot.config import Settings
from bot.fal import FalClient
from bot.jobs import Jobs, Limits, Refusal
from bot.jobs.discord.delivery import DiscordMessenger
from bot.jobs.intake import Intake, cdn_rules
from bot.jobs.policy import JobStillRuns
from bot.jobs.retention import Retention
from bot.jobs.runner import RunnerConfig, download_rules
from bot.media import DEFAULT_LIMITS, InputCache
from bot.media import Limits as MediaLimits
from bot.ops.health import HealthServer
from bot.ops.metrics import Metrics
from bot.ops.webhooks import WebhookServer, webhook_server
from bot.store import Store

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.pika", "cogs.buttons", "cogs.admin", "cogs.guilds")
COMMAND_HASH_KEY = "command_hash"


def point_discord_at(api_url: str, gateway_url: str) -> None:
    """Send discord.py's REST and gateway traffic to these URLs (a proxy, or a fake in tests).

    discord.py keeps both as class attributes, so this holds for every client in the process.
    """
    discord.http.Route.BASE = api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


INTERACTION_DRAIN_S = 5.0
# discord.py names the tasks that run slash commands, menus and component callbacks.
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

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        fal: FalClient,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
        media_limits: MediaLimits = DEFAULT_LIMITS,
        run_jobs: bool = True,
        **options: Any,
    ) -> None:
        metrics = Metrics()
        # Counts discord.py's answers from Discord (429s among them) for /metrics.
        options.setdefault("http_trace", metrics.discord_trace())
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            **options,
        )
        self.settings = settings
        self.store = store
        self.fal = fal
        self.http_client = http
        self.clock = clock
        self.media_limits = media_limits
        self.run_jobs = run_jobs
        self.closing = asyncio.Event()  # set as soon as a stop begins
        self.metrics = metrics
        self.health: HealthServer | None = None
        self.webhooks: WebhookServer | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self.cache = InputCache(
            settings.cache_dir,
            max_bytes=settings.cache_max_bytes,
            max_age_seconds=settings.cache_max_age_hours * 3600,
            clock=clock,
        )
        hosts, https = download_rules(
            settings.download_hosts, settings.fal_queue_url, settings.fal_rest_url
        )
        self.jobs = Jobs(
            store=store,
            fal=fal,
            cache=self.cache,
            http=http,
            messenger=DiscordMessenger(
                self, default_upload_limit=settings.default_upload_limit, clock=clock
            ),
            runner_config=RunnerConfig(
                output_dir=settings.output_dir,
                data_uri_max_bytes=settings.data_uri_max_bytes,
                output_max_bytes=settings.output_max_bytes,
                download_hosts=hosts,
                download_require_https=https,
                poll_interval=max(2.0, settings.progress_interval),
                progress_interval=settings.progress_interval,
                deadline_seconds=settings.job_deadline_seconds,
                hard_deadline_seconds=settings.job_hard_deadline_seconds,
                webhook_url=settings.fal_webhook_url,
            ),
            limits=Limits(
                prices=settings.prices,
                daily_allowance=settings.daily_allowance,
                reset_hour=settings.reset_hour,
                guild_daily_budget=settings.guild_daily_budget,
                global_daily_budget=settings.global_daily_budget,
                max_jobs_per_member=settings.max_jobs_per_member,
                fal_concurrency=settings.fal_concurrency,
            ),
            clock=clock,
            metrics=metrics,
            guild_gone=self.guild_gone,
        )
        cdn_hosts, cdn_https = cdn_rules(settings.discord_cdn_hosts, settings.discord_api_url)
        self.intake = Intake(
            http=http,
            concurrency=settings.intake_concurrency,
            cdn_hosts=cdn_hosts,
            require_https=cdn_https,
        )
        self.retention = Retention(
            store=store,
            cache=self.cache,
            output_dir=settings.output_dir,
            videos_max_age_seconds=settings.videos_max_age_hours * 3600,
            videos_max_bytes=settings.videos_max_total_bytes,
            interval_seconds=settings.prune_interval_minutes * 60,
            jobs_max_age_seconds=settings.job_retention_days * 86400,
            metrics=metrics,
            clock=clock,
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
                self.health = HealthServer(self, host=settings.http_host, port=settings.http_port)
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
        if not force and await self.store.get_meta(COMMAND_HASH_KEY) == digest:
            log.info("commands unchanged since the last sync; not syncing")
            return False
        await self.tree.sync()
        await self.store.set_meta(COMMAND_HASH_KEY, digest)
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
