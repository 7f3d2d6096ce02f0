"""Which of fal's answers are worth another try, and when a submit may safely be sent again.

How long to wait is the shared RetryPolicy's (bot/retry.py); the Retry-After is read here."""

from __future__ import annotations

import httpx

from bot.retry import parse_retry_after

# Answers worth retrying for calls that are safe to repeat (status, result, cancel, upload).
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
# Answers after which a submit may be repeated, but only if fal did not assign a request id.
SUBMIT_RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

TIMEOUT_TYPE_HEADER = "x-fal-request-timeout-type"
REQUEST_ID_HEADER = "x-fal-request-id"


def retry_after_of(response: httpx.Response | None) -> float | None:
    """The wait an answer asks for in its Retry-After header; None without a usable one."""
    if response is None:
        return None
    return parse_retry_after(response.headers.get("retry-after"))


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
