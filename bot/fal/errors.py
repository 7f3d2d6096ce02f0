"""The ways a call to fal can fail, one exception type each, with messages a member could read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


class FalError(Exception):
    """Base of every failure talking to fal; carries fal's request id when one is known."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class FieldError:
    """One complaint about an input field, as fal's `detail` list reports it."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    @property
    def field(self) -> str:
        """The field's dotted name without the leading `body`, e.g. `transitions.0.duration`."""
        parts = [str(p) for p in self.loc]
        if parts and parts[0] == "body":
            parts = parts[1:]
        return ".".join(parts)


class FalValidationError(FalError):
    """fal (or the model) refused the input; `fields` says which fields and why."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        fields: list[FieldError] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status = status
        self.fields: list[FieldError] = list(fields or [])


class FalAuthError(FalError):
    """fal refused the bot's key (401/403): an operator problem, not the member's."""

    def __init__(self, *, status: int, request_id: str | None = None) -> None:
        super().__init__(
            f"fal refused the bot's credentials (HTTP {status}); the operator must check FAL_KEY.",
            request_id=request_id,
        )
        self.status = status


class FalPlatformError(FalError):
    """fal itself failed (5xx, rate limit, runner trouble); `retryable`: a later try may work."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        error_type: str | None = None,
        retryable: bool,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status = status
        self.error_type = error_type
        self.retryable = retryable


class FalUnavailable(FalPlatformError):
    """fal could not be reached at all (connection refused, reset or timed out) after retrying."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(
            message, status=None, error_type="unreachable", retryable=True, request_id=request_id
        )


class FalStartTimeout(FalError):
    """The request did not start before its own start deadline (504, timeout type `user`)."""

    def __init__(self, *, request_id: str | None = None) -> None:
        super().__init__(
            "fal could not start the video before its deadline; nothing was generated.",
            request_id=request_id,
        )


NotFoundWhat = Literal["endpoint", "request"]


class FalNotFound(FalError):
    """fal does not know the endpoint (retired model) or the request (unknown or expired)."""

    def __init__(
        self,
        *,
        what: NotFoundWhat,
        endpoint_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        if what == "endpoint":
            message = (
                f"fal no longer offers {endpoint_id or 'this model'}; this mode is unavailable."
            )
        else:
            message = "fal no longer knows this request; its result may have expired."
        super().__init__(message, request_id=request_id)
        self.what: NotFoundWhat = what
        self.endpoint_id = endpoint_id


class FalSubmissionUnknown(FalError):
    """A submit whose outcome cannot be known: it may have reached fal, so it is never resent."""

    def __init__(self, *, endpoint_id: str, request_id: str | None = None) -> None:
        super().__init__(
            "The request was sent to fal but no answer came back, so it is unknown whether the "
            "video was started; it was not sent again to avoid paying twice.",
            request_id=request_id,
        )
        self.endpoint_id = endpoint_id
