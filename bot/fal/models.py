"""Typed shapes of what fal's queue answers: request handles, statuses, results, cancel outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class RequestHandle:
    """Everything needed to follow one request at fal; safe to store and rebuild."""

    request_id: str
    endpoint_id: str
    status_url: str
    response_url: str
    cancel_url: str
    queue_position: int | None = None


@dataclass(frozen=True)
class LogEntry:
    """One log line of a running request."""

    message: str
    level: str = "INFO"
    timestamp: datetime | None = None


@dataclass(frozen=True)
class Queued:
    """Waiting in fal's queue; `position` is 0-based (0 means next)."""

    position: int


@dataclass(frozen=True)
class InProgress:
    """Running on a fal runner (also used for status values this client does not know)."""

    logs: tuple[LogEntry, ...] = ()


@dataclass(frozen=True)
class Completed:
    """Finished: `error` is set when the run failed (fal has no separate FAILED status)."""

    logs: tuple[LogEntry, ...] = ()
    inference_time: float | None = None
    error: str | None = None
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        """True when the run produced a result."""
        return self.error is None and self.error_type is None


Status = Queued | InProgress | Completed


@dataclass(frozen=True)
class File:
    """A file fal produced, hosted on its CDN for a short while."""

    url: str
    content_type: str | None = None
    file_name: str | None = None
    file_size: int | None = None


@dataclass(frozen=True)
class VideoResult:
    """What every Pika endpoint answers: one video file."""

    video: File
    extra: dict[str, Any] = field(default_factory=dict)


class CancelOutcome(enum.Enum):
    """What fal said to a cancel."""

    REQUESTED = "requested"
    ALREADY_COMPLETED = "already_completed"
    NOT_FOUND = "not_found"


def _parse_timestamp(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        # fal's timestamps are UTC; a naive one is read as UTC rather than local time.
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _parse_logs(raw: Any) -> tuple[LogEntry, ...]:
    if not isinstance(raw, list):
        return ()
    entries = []
    for item in raw:
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            entries.append(
                LogEntry(
                    message=item["message"],
                    level=str(item.get("level") or "INFO"),
                    timestamp=_parse_timestamp(item.get("timestamp")),
                )
            )
    return tuple(entries)


def parse_status(data: Any) -> Status:
    """Turn a status object (from polling or the stream) into a typed Status.

    Unknown or missing status values count as still running, per fal's guidance: the
    caller keeps watching instead of failing a job over a new status name.
    """
    if not isinstance(data, dict):
        return InProgress()
    value = data.get("status")
    if value == "IN_QUEUE":
        position = data.get("queue_position")
        return Queued(position=position if isinstance(position, int) else 0)
    if value == "COMPLETED":
        metrics = data.get("metrics")
        inference_time = metrics.get("inference_time") if isinstance(metrics, dict) else None
        error = data.get("error")
        error_type = data.get("error_type")
        return Completed(
            logs=_parse_logs(data.get("logs")),
            inference_time=float(inference_time)
            if isinstance(inference_time, int | float)
            else None,
            error=str(error) if error is not None else None,
            error_type=str(error_type) if error_type is not None else None,
        )
    return InProgress(logs=_parse_logs(data.get("logs")))


def parse_file(data: Any) -> File | None:
    """Read a fal File object; None when it has no URL."""
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None
    size = data.get("file_size")
    content_type = data.get("content_type")
    file_name = data.get("file_name")
    return File(
        url=data["url"],
        content_type=content_type if isinstance(content_type, str) else None,
        file_name=file_name if isinstance(file_name, str) else None,
        file_size=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )
