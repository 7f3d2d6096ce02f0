"""fal's queue protocol over httpx: submit, watch, result, cancel, upload, and their errors."""

from bot.fal.client import USER_AGENT, FalClient, FalTimeouts, StorageToken, data_uri
from bot.fal.errors import (
    FalAuthError,
    FalError,
    FalNotFound,
    FalPlatformError,
    FalStartTimeout,
    FalSubmissionUnknown,
    FalUnavailable,
    FalValidationError,
    FieldError,
)
from bot.fal.models import (
    CancelOutcome,
    Completed,
    File,
    InProgress,
    LogEntry,
    Queued,
    RequestHandle,
    Status,
    VideoResult,
)
from bot.retry import RetryPolicy, parse_retry_after

__all__ = [
    "USER_AGENT",
    "CancelOutcome",
    "Completed",
    "FalAuthError",
    "FalClient",
    "FalError",
    "FalNotFound",
    "FalPlatformError",
    "FalStartTimeout",
    "FalSubmissionUnknown",
    "FalTimeouts",
    "FalUnavailable",
    "FalValidationError",
    "FieldError",
    "File",
    "InProgress",
    "LogEntry",
    "Queued",
    "RequestHandle",
    "RetryPolicy",
    "Status",
    "StorageToken",
    "VideoResult",
    "data_uri",
    "parse_retry_after",
]
