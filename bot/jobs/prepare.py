"""A generating command's work before its job, in one call: the server's defaults, every check
that needs no file's bytes and the price against the member's credits (all inside Discord's 3
seconds, before the acknowledgement), then the files' bytes into a request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from bot.jobs import Jobs, Requester
from bot.jobs.intake import Intake, Upload, precheck_attachment, take_inputs
from bot.media import InputCache
from bot.media import Limits as MediaLimits
from bot.pika import InputRef, Mode, PikaRequest, build_request, check_options, endpoint_for


class Parts(Protocol):
    """What preparing a command uses (the bot has each)."""

    @property
    def jobs(self) -> Jobs: ...

    @property
    def intake(self) -> Intake: ...

    @property
    def cache(self) -> InputCache: ...

    @property
    def media_limits(self) -> MediaLimits: ...


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file a member attached, as Discord describes it before its bytes are read."""

    option: str
    url: str
    content_type: str | None
    size: int
    width: int | None = None
    height: int | None = None


class Order:
    """A command that passed every check before its acknowledgement; `request` reads its files."""

    def __init__(
        self, parts: Parts, mode: Mode, options: Mapping[str, Any], files: Sequence[Attachment]
    ) -> None:
        self._parts = parts
        self.mode = mode
        self.options = dict(options)  # with the server's defaults
        self.files = tuple(files)

    async def request(self) -> PikaRequest:
        """The files' bytes (a bounded number of commands at once), checked and cached one at a
        time, and the request they make."""
        parts = self._parts
        refs: dict[str, InputRef] = {}
        if self.files:
            async with parts.intake.slot():
                for file in self.files:
                    # One file at a time: checked and cached before the next is read.
                    data = await parts.intake.read(file.option, file.url, parts.media_limits)
                    upload = Upload(file.option, data)
                    del data  # only the upload holds the bytes, until they are cached
                    refs |= await take_inputs([upload], parts.cache, parts.media_limits)
                    del upload
        return build_request(self.mode, **self.options, **refs)


@asynccontextmanager
async def prepare(
    parts: Parts,
    requester: Requester,
    mode: Mode,
    options: Mapping[str, Any],
    files: Sequence[Attachment] = (),
) -> AsyncIterator[Order]:
    """Check a command before it is acknowledged; refusals here are true ephemerals.

    While the block runs (the acknowledgement, then `Order.request`), the command counts as one
    of the member's unfinished jobs, so a burst of commands is refused before anything is
    downloaded; end the block once the request is built, before the job is accepted (which
    counts it from there), so it is not counted twice.
    """
    jobs = parts.jobs
    # What the member left out takes the server's defaults (/pikaadmin settings).
    chosen = await jobs.accounts.with_defaults(requester.guild_id, mode, options)
    # A file given stands in for its bytes, which are checked after the acknowledgement.
    check_options(mode, **chosen, **{file.option: file for file in files})
    jobs.check_available(endpoint_for(mode, chosen.get("model")).id)
    for file in files:
        precheck_attachment(
            file.option,
            content_type=file.content_type,
            size=file.size,
            width=file.width,
            height=file.height,
            limits=parts.media_limits,
        )
    with parts.intake.holding(requester.user_id) as in_intake:
        # Blocks, channels, blocklist, job count and credits at a glance; the reservation when
        # the job is accepted checks them again, atomically.
        await jobs.accounts.precheck_command(
            requester,
            mode,
            chosen,
            {file.option: file.content_type for file in files},
            in_intake=in_intake,
        )
        yield Order(parts, mode, chosen, files)
