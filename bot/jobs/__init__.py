"""A job's life: accepting and queueing, sending to fal, watching, delivering, settling."""

from bot.jobs.accounts import Accounts, Quota, ServerLimits, Usage
from bot.jobs.intake import Upload, kept_video, precheck_attachment, take_inputs
from bot.jobs.messenger import Delivered, Messenger, Progress, Stage
from bot.jobs.policy import BlockedWord, NotAllowedHere, QuotaRefused
from bot.jobs.service import CancelResult, Jobs, ModeUnavailable
from bot.jobs.terms import Accepted, Limits, Requester
from bot.media import InputRejected
from bot.pika import InvalidRequest
from bot.store import InvalidBlockedWord, Job, JobState, QuotaExceeded

# Errors whose message is meant for the member as it is: a refusal, not a bug.
Refusal = (
    InvalidRequest,
    InputRejected,
    QuotaExceeded,
    ModeUnavailable,
    NotAllowedHere,
    BlockedWord,
    InvalidBlockedWord,
)

__all__ = [
    "Accepted",
    "Accounts",
    "BlockedWord",
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
    "NotAllowedHere",
    "Progress",
    "Quota",
    "QuotaExceeded",
    "QuotaRefused",
    "Refusal",
    "Requester",
    "ServerLimits",
    "Stage",
    "Upload",
    "Usage",
    "kept_video",
    "precheck_attachment",
    "take_inputs",
]
