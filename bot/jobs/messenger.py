"""The small interface through which a job's life reaches the member, whatever carries it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from bot.store import DeliveryPath, Job


class Stage(StrEnum):
    """What a member waiting for a job is told it is doing."""

    WAITING = "waiting"  # in the bot's own queue
    FAL_QUEUE = "fal_queue"  # sent, waiting in fal's queue
    GENERATING = "generating"  # running at fal
    DELIVERING = "delivering"  # fetching the video and posting it


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress report: the stage, and a place in line or the time spent where it applies."""

    stage: Stage
    position: int | None = None  # 1 = next; in the bot's queue or in fal's
    elapsed_s: float | None = None  # since fal started generating


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where a finished video went."""

    path: DeliveryPath
    message_id: int | None = None
    note: str = ""  # a plain-words remark for the record, e.g. which permission was missing


class ProgressGone(Exception):
    """A job's progress reply can no longer be edited: Discord says its channel is gone or
    forbidden to the bot (or the reply was deleted). Editing it again is pointless."""

    def __init__(self, job_id: str, *, whole_channel: bool, why: str) -> None:
        super().__init__(f"job {job_id}: progress reply unreachable ({why})")
        self.job_id = job_id
        self.whole_channel = whole_channel


class Messenger(Protocol):
    """Turns a job's progress, result and failure into messages for the member."""

    async def show_progress(self, job: Job, progress: Progress) -> None:
        """Show where the job stands (the caller throttles; this may still be slow or fail).

        Raises ProgressGone when the reply can never be edited again."""

    async def deliver(self, job: Job, video: Path, *, resumed: bool) -> Delivered:
        """Post the finished video; with `resumed`, first make sure it was not posted already."""

    async def tell_failure(self, job: Job, reason: str) -> None:
        """Tell the member, in plain words, why the job ended without a video."""

    async def ready(self) -> None:
        """Return once the member's side is known (Discord's servers have arrived), so that a
        server the bot was removed from while it was down shows as gone."""
