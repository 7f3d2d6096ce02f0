"""What a job row is: its states, the fields a new job starts with, and the fields that change."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict

# Lowercase RFC 4648 base32: no 0/1/8/9, so ids read aloud or typed back are hard to confuse.
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
JOB_ID_LENGTH = 8


def new_job_id() -> str:
    """A fresh random job id: 8 base32 characters (40 bits), not guessable from other ids."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(JOB_ID_LENGTH))


class JobState(StrEnum):
    """Where a job is in its life (PRODUCT.md §2); the runner drives the transitions."""

    QUEUED = "queued"  # written, waiting in the bot's own queue
    SUBMITTING = (
        "submitting"  # about to be sent to fal: if the bot dies here the outcome is unknown
    )
    SUBMITTED = "submitted"  # fal accepted it: request id and URLs stored; in fal's queue
    RUNNING = "running"  # IN_PROGRESS at fal
    COMPLETED = "completed"  # fal said COMPLETED; result not fetched yet
    DOWNLOADED = "downloaded"  # the video is on disk
    DELIVERED = "delivered"  # posted to Discord
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # the bot died mid-submission: fal may or may not have the job

    @property
    def terminal(self) -> bool:
        """Whether the job can no longer change state."""
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN}
)
UNFINISHED_STATES: frozenset[JobState] = frozenset(JobState) - TERMINAL_STATES


class DeliveryPath(StrEnum):
    """How the finished video reached the member."""

    CHANNEL = "channel"  # uploaded to the channel of the command
    DM = "dm"  # the channel refused; sent by direct message
    LINK = "link"  # too large to upload: posted as a link
    KEPT = "kept"  # nowhere to post it: kept on disk for /pika job


@dataclass(frozen=True, slots=True)
class NewJob:
    """What the command layer knows about a job before it is accepted."""

    mode: str
    endpoint_id: str
    request_json: str  # the validated request, as JSON text that rebuilds it after a restart
    guild_id: int
    channel_id: int
    user_id: int
    input_hashes: Sequence[str] = ()
    interaction_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)
    token_expires_at: int | None = None
    seed: int | None = None
    parent_job_id: str | None = None
    upload_limit: int | None = None

    def __post_init__(self) -> None:
        try:
            parsed = json.loads(self.request_json)
        except ValueError as exc:
            raise ValueError(f"request_json is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ValueError("request_json must hold a JSON object")


class JobChanges(TypedDict, total=False):
    """Columns a job's update may set; anything else about a job is fixed at creation."""

    interaction_token: str | None
    token_expires_at: int | None
    progress_message_id: int | None
    result_message_id: int | None
    fal_request_id: str | None
    status_url: str | None
    response_url: str | None
    cancel_url: str | None
    fal_queue_position: int | None
    submitted_at: int | None
    started_at: int | None
    completed_at: int | None
    finished_at: int | None
    video_url: str | None
    output_path: str | None
    output_size: int | None
    error: str | None
    error_code: str | None
    seed: int | None
    delivery_path: DeliveryPath | None
    told_at: int | None


CHANGEABLE_COLUMNS: frozenset[str] = frozenset(JobChanges.__annotations__)

# The timestamp a state stamps on the job when it is entered (unless the caller gives one).
STATE_TIMESTAMPS: Mapping[JobState, str] = {
    JobState.SUBMITTED: "submitted_at",
    JobState.RUNNING: "started_at",
    JobState.COMPLETED: "completed_at",
    **{state: "finished_at" for state in TERMINAL_STATES},
}


@dataclass(frozen=True, slots=True)
class Job:
    """One job row, as stored."""

    id: str
    created_at: int
    updated_at: int
    state: JobState
    mode: str
    endpoint_id: str
    request_json: str
    input_hashes: tuple[str, ...]
    cost: int
    guild_id: int
    channel_id: int
    user_id: int
    interaction_id: int | None
    interaction_token: str | None = field(repr=False)
    token_expires_at: int | None
    progress_message_id: int | None
    result_message_id: int | None
    fal_request_id: str | None
    status_url: str | None
    response_url: str | None
    cancel_url: str | None
    fal_queue_position: int | None
    submitted_at: int | None
    started_at: int | None
    completed_at: int | None
    finished_at: int | None
    video_url: str | None
    output_path: str | None
    output_size: int | None
    error: str | None
    error_code: str | None
    seed: int | None
    parent_job_id: str | None
    delivery_path: DeliveryPath | None
    upload_limit: int | None
    told_at: int | None

    @property
    def request(self) -> dict[str, Any]:
        """The stored request, parsed."""
        parsed: dict[str, Any] = json.loads(self.request_json)
        return parsed

    @property
    def terminal(self) -> bool:
        """Whether the job has reached an end state."""
        return self.state.terminal

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        """Build a Job from a `SELECT * FROM jobs` row."""
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["state"] = JobState(values["state"])
        values["input_hashes"] = tuple(json.loads(values["input_hashes"]))
        if values["delivery_path"] is not None:
            values["delivery_path"] = DeliveryPath(values["delivery_path"])
        return cls(**values)
