"""Reading fal's answers: each error answer as the one exception type for its failure, and
JSON bodies that may not be JSON."""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx

from bot.fal.errors import (
    FalAuthError,
    FalError,
    FalNotFound,
    FalPlatformError,
    FalStartTimeout,
    FalValidationError,
    FieldError,
)
from bot.fal.retry import REQUEST_ID_HEADER, RETRYABLE_STATUSES, is_user_start_timeout

log = logging.getLogger(__name__)

Call = Literal["submit", "status", "result", "cancel", "token", "upload"]

# Longest server text quoted back in an error message; fal's details are short, proxies' are not.
MAX_DETAIL_CHARS = 300


def json_of(response: httpx.Response, request_id: str | None) -> Any:
    """The answer's JSON body; one that is not JSON is fal's own failure, not worth a retry."""
    try:
        return response.json()
    except ValueError as exc:
        raise FalPlatformError(
            f"fal sent an unreadable answer (HTTP {response.status_code}).",
            status=response.status_code,
            error_type="invalid_response",
            retryable=False,
            request_id=request_id,
        ) from exc


def error_for(
    response: httpx.Response,
    *,
    call: Call,
    request_id: str | None = None,
    endpoint_id: str | None = None,
) -> FalError:
    """Map an error answer to the one exception type for its failure."""
    code = response.status_code
    request_id = request_id or response.headers.get(REQUEST_ID_HEADER)
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    error_type = response.headers.get("x-fal-error-type") or (
        body.get("error_type") if isinstance(body, dict) else None
    )

    if code in (401, 403):
        log.error("fal refused the key (HTTP %d on %s); check FAL_KEY", code, call)
        return FalAuthError(status=code, request_id=request_id)
    if is_user_start_timeout(response):
        return FalStartTimeout(request_id=request_id)
    if code == 404:
        if call == "submit":
            return FalNotFound(what="endpoint", endpoint_id=endpoint_id)
        return FalNotFound(what="request", request_id=request_id)
    # A refused input is a 4xx with a detail list, or any 4xx fal did not tag with an error
    # type; a tagged one (e.g. request_cancelled) is fal's own doing, not the member's input.
    refused_input = code == 422 or isinstance(detail, list) or not error_type
    if 400 <= code < 500 and code not in RETRYABLE_STATUSES and refused_input:
        return _validation_error(code, detail, request_id)
    # Only fal's own `detail` is quoted; a proxy's HTML error page helps nobody.
    reason = short(detail) if isinstance(detail, str) else None
    what = f"HTTP {code}" + (f", {error_type}" if error_type else "")
    text = f"fal could not run the video right now ({what})"
    return FalPlatformError(
        text + (f": {reason}" if reason else "."),
        status=code,
        error_type=str(error_type) if error_type else None,
        retryable=code in RETRYABLE_STATUSES,
        request_id=request_id,
    )


def _validation_error(code: int, detail: Any, request_id: str | None) -> FalValidationError:
    fields: list[FieldError] = []
    if isinstance(detail, list):
        for item in detail:
            if not isinstance(item, dict):
                continue
            loc = item.get("loc")
            fields.append(
                FieldError(
                    loc=tuple(p if isinstance(p, int) else str(p) for p in loc)
                    if isinstance(loc, list | tuple)
                    else (),
                    msg=str(item.get("msg") or "invalid value"),
                    type=str(item.get("type") or "value_error"),
                )
            )
    if fields:
        parts = [f"{f.field}: {f.msg}" if f.field else f.msg for f in fields]
        message = "fal refused the input: " + short("; ".join(parts))
    elif isinstance(detail, str) and detail.strip():
        message = "fal refused the input: " + short(detail)
    else:
        message = f"fal refused the input (HTTP {code})."
    return FalValidationError(message, status=code, fields=fields, request_id=request_id)


def body_status(response: httpx.Response) -> str | None:
    """The `status` field of a JSON answer, if it has one."""
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("status") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def short(text: str) -> str:
    """The text on one line, cut to MAX_DETAIL_CHARS."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"
