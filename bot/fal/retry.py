"""When and how long to wait before trying a call to fal again (backoff, jitter, Retry-After)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

# Answers worth retrying for calls that are safe to repeat (status, result, cancel, upload).
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
# Answers after which a submit may be repeated, but only if fal did not assign a request id.
SUBMIT_RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

TIMEOUT_TYPE_HEADER = "x-fal-request-timeout-type"
REQUEST_ID_HEADER = "x-fal-request-id"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter, capped; Retry-After wins when given."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    # A server asking for a longer wait than this is obeyed only up to this cap, so one
    # odd header cannot park a job for an hour.
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, retry_number: int, random_fraction: float) -> float:
        """Delay before retry `retry_number` (1-based): full jitter over a capped exponential."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry_number - 1))
        return max(0.0, min(1.0, random_fraction)) * ceiling

    def delay_for(
        self, retry_number: int, random_fraction: float, response: httpx.Response | None
    ) -> float:
        """The wait before the next try, honouring the answer's Retry-After when it has one."""
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is not None:
                return min(retry_after, self.max_retry_after)
        return self.backoff(retry_number, random_fraction)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is not a delay
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_user_start_timeout(response: httpx.Response) -> bool:
    """A 504 caused by the caller's own start deadline: final, never retried."""
    return (
        response.status_code == 504
        and response.headers.get(TIMEOUT_TYPE_HEADER, "").strip().lower() == "user"
    )


def should_retry_response(response: httpx.Response) -> bool:
    """Whether an answer to a safe-to-repeat call (GET/PUT) is worth another try."""
    return response.status_code in RETRYABLE_STATUSES and not is_user_start_timeout(response)


def should_retry_submit_response(response: httpx.Response) -> bool:
    """Whether a submit answer proves fal never took the request, so sending it again is safe.

    Only gateway-level refusals qualify: once fal assigns a request id the request exists
    and a second submit could be billed twice.
    """
    return (
        response.status_code in SUBMIT_RETRYABLE_STATUSES
        and REQUEST_ID_HEADER not in response.headers
        and not is_user_start_timeout(response)
    )


def submit_never_sent(exc: httpx.RequestError) -> bool:
    """Transport failures that happen before any byte of the request could reach fal."""
    return isinstance(
        exc,
        httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.UnsupportedProtocol,
    )
