"""A job's life: accepting and queueing, sending to fal, watching, delivering, settling."""

from bot.jobs.intake import Upload, kept_video, precheck_attachment, take_inputs
from bot.jobs.messenger import Delivered, Messenger, Progress, Stage
from bot.jobs.service import (
    Accepted,
    CancelResult,
    Jobs,
    Limits,
    ModeUnavailable,
    Requester,
)
from bot.media import InputRejected
from bot.pika import InvalidRequest
from bot.store import Job, JobState, QuotaExceeded

# Errors whose message is meant for the member as it is: a refusal, not a bug.
Refusal = (InvalidRequest, InputRejected, QuotaExceeded, ModeUnavailable)

__all__ = [
    "Accepted",
    "CancelResult",
    "Delivered",
    "InputRejected",
    "InvalidRequest",
    "Job",
    "JobState",
    "Jobs",
    "Limits",
    "Messenger",
    "ModeUnavailable",
    "Progress",
    "QuotaExceeded",
    "Refusal",
    "Requester",
    "Stage",
    "Upload",
    "kept_video",
    "precheck_attachment",
    "take_inputs",
]
