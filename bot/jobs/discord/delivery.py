"""The Discord side of a job: progress edits, posting the video, telling members about failures."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import discord

from bot.jobs.discord import render
from bot.jobs.messenger import Delivered, Progress, ProgressGone
from bot.media import fit_to_limit, fitted_path
from bot.retry import RetryPolicy, parse_retry_after
from bot.store import DeliveryPath, Job

log = logging.getLogger(__name__)

# The interaction token is treated as dead this long before Discord kills it, so a request that
# starts just before expiry does not fail (and an expired token is never retried).
TOKEN_MARGIN_S = 60
# discord.py's Webhook.edit_message formats the id into the path; "@original" is Discord's
# documented name for an interaction's first reply.
ORIGINAL = cast(int, "@original")
# The look for a delivery made before a crash reads every message since the job was accepted,
# so it covers the job's whole life however busy the channel (the nonce only covers minutes),
# up to this many.
HISTORY_SCAN = 2000
# A post that Discord failed with a 5xx or a 429 it would not let discord.py wait out is tried
# this many times in all (after a look for an earlier success), then the video goes by DM.
POST_ATTEMPTS = 3
# One second, then two; a Retry-After from Discord is obeyed up to ten seconds.
POST_RETRY = RetryPolicy(
    max_attempts=POST_ATTEMPTS, base_delay=1.0, jitter=False, max_retry_after=10.0
)
UNKNOWN_CHANNEL = 10003  # Discord's JSON error code for a channel that does not exist (any more)


def result_nonce(job: Job) -> str:
    """The nonce of the job's result post in its channel (Discord: at most 25 characters)."""
    return f"pika-{job.id}"


def dm_nonce(job: Job) -> str:
    """The nonce of the job's result sent by DM."""
    return f"pika-{job.id}-dm"


class MemberUnreachable(Exception):
    """Neither the interaction, the channel nor a DM would take a message for the member."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id}: the member could not be told by any route")
        self.job_id = job_id


class DiscordMessenger:
    """Posts through the interaction token while it lives, and through the bot token after."""

    def __init__(
        self,
        client: discord.Client,
        *,
        default_upload_limit: int,
        clock: Callable[[], float] = time.time,
        retry: RetryPolicy = POST_RETRY,
    ) -> None:
        self._client = client
        self._default_upload_limit = default_upload_limit
        self._clock = clock
        self._retry = retry
        # Tokens Discord called invalid before their time (401): never used again.
        self._dead_tokens: set[str] = set()

    # -- routes ------------------------------------------------------------------------------

    def token_alive(self, job: Job) -> bool:
        """Whether the job's interaction token may still be used (never retry a dead one)."""
        if not job.interaction_token or job.token_expires_at is None:
            return False
        if job.interaction_token in self._dead_tokens:
            return False
        return self._clock() < job.token_expires_at - TOKEN_MARGIN_S

    def _token_died(self, job: Job, error: discord.HTTPException) -> bool:
        """Whether the error says the job's token is dead (401, e.g. 50027); remembers it."""
        if error.status != 401 or not job.interaction_token:
            return False
        log.warning("job %s: Discord says its interaction token is dead (%s)", job.id, error)
        self._dead_tokens.add(job.interaction_token)
        return True

    def _webhook(self, job: Job) -> discord.Webhook:
        assert job.interaction_token is not None
        app_id = self._client.application_id
        assert app_id is not None
        # An interaction's webhook must be of the application type (3), as discord.py builds
        # Interaction.followup: Webhook.partial makes an incoming one (1), which refuses to
        # send ephemeral messages.
        data: Any = {"id": app_id, "type": 3, "token": job.interaction_token}
        return discord.Webhook.from_state(data=data, state=self._client._connection)

    def _channel(self, job: Job) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)

    async def _edit_progress(self, job: Job, **fields: Any) -> None:
        if self.token_alive(job):
            try:
                await self._webhook(job).edit_message(ORIGINAL, **fields)
                return
            except discord.HTTPException as error:
                if not self._token_died(job, error) or job.progress_message_id is None:
                    raise
        if job.progress_message_id is not None:
            await self._channel(job).get_partial_message(job.progress_message_id).edit(**fields)

    # -- Messenger ---------------------------------------------------------------------------

    def missing_permissions(self, job: Job) -> list[str]:
        """What the bot lacks to post results in the job's channel, as far as its cache knows."""
        channel = self._client.get_channel(job.channel_id)
        if not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            return []
        # guild.me is typed as always there, but it is missing until the guild has loaded.
        me: discord.Member | None = channel.guild.me
        if me is None:
            return []
        thread = isinstance(channel, discord.Thread)
        return render.missing_permissions(channel.permissions_for(me), thread=thread)

    def upload_limit(self, job: Job) -> int:
        """The largest file one message may carry in the job's channel.

        The video goes out with the bot token (see _post_file), so the channel's limit applies:
        the one Discord gave the interaction there (the runtime value) and the guild's as
        discord.py knows it, whichever is smaller; the default only when neither is known.
        """
        guild = self._client.get_guild(job.guild_id)
        known = [limit for limit in (job.upload_limit, guild and guild.filesize_limit) if limit]
        return min(known) if known else self._default_upload_limit

    async def show_progress(self, job: Job, progress: Progress) -> None:
        try:
            await self._edit_progress(
                job,
                embed=render.progress_embed(job, progress, missing=self.missing_permissions(job)),
                view=render.progress_view(job),
                allowed_mentions=render.NO_MENTIONS,
            )
        except (discord.NotFound, discord.Forbidden) as error:
            # A deleted channel (or reply) stays deleted; a refusal is not retried every tick.
            whole_channel = isinstance(error, discord.NotFound) and error.code == UNKNOWN_CHANNEL
            raise ProgressGone(job.id, whole_channel=whole_channel, why=str(error)) from error

    async def ready(self) -> None:
        await self._client.wait_until_ready()

    async def deliver(self, job: Job, video: Path, *, resumed: bool) -> Delivered:
        if resumed:
            earlier = await self._find_delivery(job)
            if earlier is not None:
                log.info(
                    "job %s was already delivered (%s, message %s)",
                    job.id,
                    earlier.path,
                    earlier.message_id,
                )
                await self._mark_progress_done(job, earlier)
                return earlier
        # The upload limit and the permissions come from the guild cache, which a bot that has
        # just started (and resumed its jobs) does not have yet. A bot that never gets READY is
        # stopped while it waits here, and the job stays as it is for the next start.
        await self._client.wait_until_ready()
        try:
            delivered = await self._deliver_new(job, video)
        except Exception:
            # Whatever went wrong, the member hears of the video: a link, or /pika job.
            log.exception("job %s: delivery failed unexpectedly; posting its link", job.id)
            try:
                delivered = await self._post_link(job)
            except Exception:
                log.exception("job %s: the link could not be posted either", job.id)
                delivered = Delivered(DeliveryPath.KEPT, None, "delivery failed")
        await self._mark_progress_done(job, delivered)
        return delivered

    async def _deliver_new(self, job: Job, video: Path) -> Delivered:
        upload = await self._fitting(job, video, self.upload_limit(job))
        missing = self.missing_permissions(job)
        if missing:
            reason = f"the bot is missing {', '.join(missing)} in the channel"
            log.info("job %s: %s; delivering by DM", job.id, reason)
            return await self._dm_or_keep(job, upload, reason=reason)
        if upload is None:
            return await self._post_link(job)
        return await self._post_file(job, upload)

    async def tell_failure(self, job: Job, reason: str) -> None:
        try:
            await self._edit_progress(
                job,
                embed=render.failure_embed(job, reason),
                view=None,
                allowed_mentions=render.NO_MENTIONS,
            )
        except discord.HTTPException as error:
            log.warning("job %s: could not edit the progress reply: %s", job.id, error)
        note = f"<@{job.user_id}> your Pika job `{job.id}` ended without a video: {reason}"
        if self.token_alive(job):
            try:
                await self._webhook(job).send(
                    note, ephemeral=True, allowed_mentions=render.requester_only(job.user_id)
                )
                return
            except discord.HTTPException as error:
                self._token_died(job, error)
                log.warning("job %s: the failure note could not be sent: %s", job.id, error)
        if await self._send_anywhere(job, content=note) is None:
            raise MemberUnreachable(job.id)

    # -- delivery ----------------------------------------------------------------------------

    async def _fitting(self, job: Job, video: Path, limit: int) -> Path | None:
        """The file to upload: the video itself if it fits, a re-encoded copy, or None (then
        its link is posted), also when the video cannot be re-encoded at all."""
        size = job.output_size if job.output_size is not None else video.stat().st_size  # noqa: ASYNC240
        if size <= limit:
            return video
        fitted = fitted_path(video)
        log.info("job %s: video is %d bytes, limit %d: re-encoding", job.id, size, limit)
        try:
            result = await asyncio.to_thread(fit_to_limit, video, fitted, limit)
        except Exception as error:  # PyAV raises many kinds on a damaged file
            log.warning(
                "job %s: the video could not be re-encoded (%r); posting its link", job.id, error
            )
            return None
        return None if result is None else result.path

    async def _post_file(self, job: Job, upload: Path) -> Delivered:
        """Post the video in the channel with the bot token, never twice.

        Not as an interaction followup: discord.py retries a followup that Discord answered
        with a 5xx, and a webhook takes no nonce, so a video Discord had created before failing
        would be posted again. A channel post carries the job's nonce with enforce_nonce, so
        Discord answers any repeat (discord.py's own retries and ours) with the first message;
        the look at the channel before our own retries stays as a second line.
        """
        content = render.result_content(job)
        embed = render.result_embed(job)
        mentions = render.requester_only(job.user_id)
        async for attempt in self._retry.attempts():
            if attempt.number > 1:
                # A 5xx may come after Discord posted it: never post the video twice.
                earlier = await self._find_delivery(job)
                if earlier is not None:
                    return earlier
            try:
                message = await self._channel(job).send(
                    content,
                    embed=embed,
                    file=discord.File(upload, filename=f"pika-{job.id}.mp4"),
                    view=render.result_view(job),
                    allowed_mentions=mentions,
                    nonce=result_nonce(job),
                )
                return Delivered(DeliveryPath.CHANNEL, message.id)
            except (discord.Forbidden, discord.NotFound) as error:
                log.warning(
                    "job %s: the channel refused the video (%s); trying a DM", job.id, error
                )
                return await self._dm_or_keep(job, upload, reason=str(error))
            except discord.HTTPException as error:
                transient = error.status >= 500 or error.status == 429
                if not transient or attempt.last:
                    log.warning("job %s: the video was not posted (%s); trying a DM", job.id, error)
                    return await self._dm_or_keep(job, upload, reason=str(error))
                if error.status == 429:
                    headers = getattr(error.response, "headers", None) or {}
                    attempt.retry_after(parse_retry_after(headers.get("Retry-After")))
                log.info("job %s: posting failed (%s); trying again", job.id, error)
        raise AssertionError("a retry policy makes at least one attempt")

    async def _dm_or_keep(self, job: Job, upload: Path | None, *, reason: str) -> Delivered:
        try:
            user = await self._client.fetch_user(job.user_id)
            intro = f"Your Pika video could not be posted in <#{job.channel_id}> ({reason}), "
            if upload is None:
                message = await user.send(
                    intro + "and it is too large to send here, so here is its link.",
                    embed=render.result_embed(job, link=job.video_url),
                    allowed_mentions=render.NO_MENTIONS,
                    nonce=dm_nonce(job),
                )
            else:
                message = await user.send(
                    intro + "so here it is.",
                    embed=render.result_embed(job),
                    file=discord.File(upload, filename=f"pika-{job.id}.mp4"),
                    allowed_mentions=render.NO_MENTIONS,
                    nonce=dm_nonce(job),
                )
            return Delivered(DeliveryPath.DM, message.id, reason)
        except discord.HTTPException as error:
            log.warning("job %s: DM refused too (%s); keeping the video", job.id, error)
            return Delivered(DeliveryPath.KEPT, None, f"{reason}; DM: {error}")

    async def _post_link(self, job: Job) -> Delivered:
        link = job.video_url
        embed = render.result_embed(job, link=link)
        message = await self._send_anywhere(
            job,
            content=render.result_content(job),
            embed=embed,
            nonce=result_nonce(job),
            dm_nonce=dm_nonce(job),
        )
        if message is None:
            return Delivered(DeliveryPath.KEPT, None, "too large, and the channel refused a link")
        return Delivered(DeliveryPath.LINK, message.id)

    async def _send_anywhere(
        self, job: Job, *, dm_nonce: str | None = None, **fields: Any
    ) -> discord.Message | None:
        """Send in the channel, else by DM; None if neither would take it.

        A `nonce` in `fields` is the channel post's; `dm_nonce` the DM's (Discord matches a
        nonce across all of the bot's messages, so the two must differ)."""
        mentions = render.requester_only(job.user_id)
        try:
            return await self._channel(job).send(allowed_mentions=mentions, **fields)
        except discord.HTTPException as error:
            log.info("job %s: the channel refused a message (%s); trying a DM", job.id, error)
        fields.pop("view", None)  # a job's buttons belong in its server
        fields.pop("nonce", None)
        if dm_nonce is not None:
            fields["nonce"] = dm_nonce
        try:
            user = await self._client.fetch_user(job.user_id)
            return await user.send(allowed_mentions=render.NO_MENTIONS, **fields)
        except discord.HTTPException:
            return None

    async def _mark_progress_done(self, job: Job, delivered: Delivered) -> None:
        where = {
            DeliveryPath.CHANNEL: "the video is below.",
            DeliveryPath.LINK: "the video was too large to upload; its link is below.",
            DeliveryPath.DM: "the video could not be posted here, so it was sent by DM.",
            DeliveryPath.KEPT: f"the video could not be posted; see it with /pika job {job.id}.",
        }[delivered.path]
        try:
            await self._edit_progress(
                job,
                embed=render.finished_embed(job, where=where),
                view=None,
                allowed_mentions=render.NO_MENTIONS,
            )
        except discord.HTTPException as error:
            log.warning("job %s: could not update the progress reply: %s", job.id, error)

    async def _find_delivery(self, job: Job) -> Delivered | None:
        """A delivery this bot already made for the job (a crash after posting, before the
        job was marked delivered): a file or a link in the channel, or a DM to the member."""
        footer = f"job {job.id}"
        since = discord.Object(
            discord.utils.time_snowflake(datetime.fromtimestamp(job.created_at, UTC))
        )

        def mine(message: discord.Message) -> bool:
            me = self._client.user
            return (me is None or message.author.id == me.id) and any(
                (embed.footer.text or "") == footer for embed in message.embeds
            )

        try:
            async for message in self._channel(job).history(limit=HISTORY_SCAN, after=since):
                # The progress reply and failure notes carry the footer too, but neither the
                # video nor the result's own text.
                if not mine(message) or message.id == job.progress_message_id:
                    continue
                if message.attachments:
                    return Delivered(DeliveryPath.CHANNEL, message.id, "found after a restart")
                if message.content == render.result_content(job):
                    return Delivered(DeliveryPath.LINK, message.id, "found after a restart")
        except discord.HTTPException as error:
            log.info("job %s: could not read the channel's history: %s", job.id, error)
        try:
            user = await self._client.fetch_user(job.user_id)
            dm = await user.create_dm()
            async for message in dm.history(limit=HISTORY_SCAN, after=since):
                # Failure notes in DMs have no embed: anything with the footer is the video.
                if mine(message):
                    return Delivered(DeliveryPath.DM, message.id, "found after a restart")
        except discord.HTTPException as error:
            log.info("job %s: could not read the DM history: %s", job.id, error)
        return None
