"""What the emulator keeps about each request: its stage, logs and result, and what tests read."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bot.emulator.schemas import JobInput
from bot.emulator.scripts import Fault, JobScript

Stage = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
STAGES: tuple[Stage, ...] = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")


class UnknownRequest(KeyError):
    """No request with this id was ever submitted to this emulator."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id

    def __str__(self) -> str:
        return f"the emulator has no request {self.request_id!r}"


class InputFetchFailed(Exception):
    """A file input could not be downloaded; the message says which and why."""


@dataclass(frozen=True)
class Submission:
    """One accepted submit as received (header names lower-cased, Authorization left out)."""

    request_id: str
    endpoint_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    script: JobScript
    received_at: datetime
    scenes_field: str | None = None
    duration_type: str | None = None
    ignored_fields: tuple[str, ...] = ()
    webhook_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["received_at"] = self.received_at.isoformat()
        data["script"] = asdict(self.script)
        return data


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to POST a request's callback: the answer's status, or why there was none."""

    request_id: str
    url: str
    attempt: int
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Job:
    """One submitted request: where it is in its life, its logs and, once COMPLETED, its result."""

    request_id: str
    endpoint_id: str
    owner_app: str
    base_url: str
    job_input: JobInput
    script: JobScript
    stage: Stage = "IN_QUEUE"
    queue_position: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)
    started_at: float | None = None
    completed_at: float | None = None
    error: str | None = None
    error_type: str | None = None
    result_status: int = 200
    result_body: Any = None
    result_headers: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False
    expired: bool = False
    # advance() names the stage it releases, so a late release never skips the next stage's hold.
    release_stage: Stage | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    version: int = 0
    task: asyncio.Task[None] | None = None
    holds_slot: bool = False
    webhook_url: str | None = None

    def touch(self) -> None:
        """Count a change and wake whoever waits on one (status streams, wait_for_status)."""
        self.version += 1
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    def set_stage(self, stage: Stage) -> None:
        self.stage = stage
        if self.release_stage != stage:
            self.release_stage = None
        self.touch()

    def log(self, message: str, level: str = "INFO") -> None:
        self.logs.append(
            {
                "message": message,
                "level": level,
                "source": "user",
                "timestamp": datetime.now(UTC).isoformat(),
            }
        )
        self.touch()


@dataclass
class PendingFault:
    """An injected fault and how many more requests of its kind it answers."""

    fault: Fault
    remaining: int


@dataclass
class StoredFile:
    """A file the emulator serves: an upload or a result video, on disk under files_dir."""

    path: Path
    content_type: str
    file_name: str
