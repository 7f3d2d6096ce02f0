"""Why a job ended without a video: plain words for the member, a short code for the record."""

from __future__ import annotations

from dataclasses import dataclass

from bot.fal import (
    FalAuthError,
    FalError,
    FalNotFound,
    FalPlatformError,
    FalStartTimeout,
    FalSubmissionUnknown,
    FalValidationError,
)
from bot.media import DownloadError

NOT_CHARGED = "You were not charged."


@dataclass(frozen=True, slots=True)
class Reason:
    """A failure as the member reads it (`words`) and as the operator filters it (`code`)."""

    words: str
    code: str


def reason_for(error: Exception) -> Reason:
    """The plain-words reason for an exception raised while a job was at fal or being fetched."""
    if isinstance(error, FalSubmissionUnknown):
        return Reason(
            "The connection to fal broke while the job was being sent, so the bot cannot tell "
            "whether fal received it. It will not send it again (that could make you pay twice). "
            f"{NOT_CHARGED} Try again in a moment.",
            "submission_unknown",
        )
    if isinstance(error, FalValidationError):
        detail = (
            "; ".join(f"{f.field}: {f.msg}" if f.field else f.msg for f in error.fields)
            if error.fields
            else error.message
        )
        return Reason(f"Pika refused this request: {detail}. {NOT_CHARGED}", "fal_validation")
    if isinstance(error, FalAuthError):
        return Reason(
            "The bot's fal account refused the request (the operator has been told). "
            f"{NOT_CHARGED}",
            "fal_auth",
        )
    if isinstance(error, FalStartTimeout):
        return Reason(
            f"fal was too busy to start the video in time. {NOT_CHARGED} Try again later.",
            "fal_start_timeout",
        )
    if isinstance(error, FalNotFound):
        if error.what == "endpoint":
            return Reason(
                "This Pika mode is not available at fal any more; it has been switched off "
                f"until the operator checks it. {NOT_CHARGED}",
                "endpoint_gone",
            )
        return Reason(
            f"fal no longer has this job or its result (results expire). {NOT_CHARGED}",
            "fal_not_found",
        )
    if isinstance(error, FalPlatformError):
        return Reason(
            f"fal had a problem running the video ({error.error_type or 'error'}). "
            f"{NOT_CHARGED} Try again in a moment.",
            f"fal_platform:{error.error_type or error.status}",
        )
    if isinstance(error, FalError):
        return Reason(f"fal could not make the video: {error.message}. {NOT_CHARGED}", "fal_error")
    if isinstance(error, DownloadError):
        return Reason(
            f"The finished video could not be fetched from fal ({error}). {NOT_CHARGED}",
            "download_failed",
        )
    return Reason(
        f"Something went wrong inside the bot while making the video. {NOT_CHARGED}",
        "internal",
    )


def model_failure(error: str | None, error_type: str | None) -> Reason:
    """A run that fal finished with an error in its status (no result worth fetching)."""
    detail = (error or error_type or "no reason given").strip().rstrip(".")
    return Reason(f"Pika could not make this video: {detail}. {NOT_CHARGED}", "model_error")


CANCELLED = Reason(f"Cancelled. {NOT_CHARGED}", "cancelled")
INPUT_GONE = Reason(
    f"The job's input files are no longer in the bot's cache. {NOT_CHARGED} "
    "Run the command again with the files.",
    "input_gone",
)
RESTARTED_WHILE_SENDING = Reason(
    "The bot restarted while sending this job to fal, so it cannot tell whether fal received "
    f"it. It will not send it again (that could make you pay twice). {NOT_CHARGED}",
    "submission_unknown",
)
VIDEO_LOST = Reason(
    "The finished video was lost from the bot's disk before it could be posted. "
    f"{NOT_CHARGED} Try again.",
    "video_lost",
)
LEFT_SERVER = Reason(
    "The bot was removed from this server before the job was sent to fal, so it was "
    f"cancelled. {NOT_CHARGED}",
    "left_server",
)
KEPT_FAILING = Reason(
    "Something kept going wrong inside the bot while making this video, so it gave up after "
    f"several tries. {NOT_CHARGED} Try again later.",
    "internal_retries",
)
REQUEST_UNREADABLE = Reason(
    f"This job was made by an older version of the bot and cannot be run any more. {NOT_CHARGED}",
    "request_unreadable",
)


def deadline_passed(minutes: int) -> Reason:
    """The job ran out of its overall time."""
    return Reason(
        f"The video was not ready after {minutes} minutes, so the bot gave up and cancelled it "
        f"at fal. {NOT_CHARGED}",
        "deadline",
    )


def fal_no_answer(minutes: int) -> Reason:
    """fal never said how the job ended, even after the bot asked it to stop."""
    return Reason(
        f"fal did not say how the video went within {minutes} minutes, even after the bot asked "
        f"it to stop, so the bot gave up on it. {NOT_CHARGED}",
        "fal_no_answer",
    )
