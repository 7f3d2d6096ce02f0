"""What tests script into the fal emulator: how jobs behave, which requests fail."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

Outcome = Literal["ok", "model_error", "platform_error"]
RequestKind = Literal["submit", "status", "stream", "result", "cancel", "token", "upload", "file"]

OUTCOMES: tuple[str, ...] = get_args(Outcome)
REQUEST_KINDS: tuple[str, ...] = get_args(RequestKind)

_Scripted = TypeVar("_Scripted", "JobScript", "Fault")


class ScriptError(ValueError):
    """A JobScript or Fault that cannot be followed, e.g. an unknown outcome or request kind."""


@dataclass(frozen=True)
class JobScript:
    """How one submitted job behaves, from IN_QUEUE to its result.

    queue_position counts down to 0 over queue_seconds; hold_in_queue / hold_in_progress keep the
    job in that stage until FalEmulator.advance(). outcome "model_error" ends COMPLETED with an
    error and a 422 result with a detail list; "platform_error" ends COMPLETED with error_type
    (default runner_scheduling_failure) and a 5xx result. output_size pads the MP4 with a trailing
    `free` box to about that many bytes. stream_break_after=N drops every status stream of this job
    after N data events (at its next change or keep-alive), before COMPLETED. A submit with
    fal_webhook gets webhook_copies signed callbacks on completion (fal repeats deliveries; 0
    loses them all).
    """

    queue_seconds: float = 0.0
    queue_position: int = 0
    run_seconds: float = 0.05
    hold_in_queue: bool = False
    hold_in_progress: bool = False
    outcome: Outcome = "ok"
    error_message: str | None = None
    output_size: int | None = None
    stream_break_after: int | None = None
    webhook_copies: int = 1
    # Beyond the shared contract: finer control over how an error looks.
    error_type: str | None = None
    result_status: int | None = None
    error_loc: tuple[str, ...] = ("body", "prompt")
    # The result's video URL starts with this instead of the emulator's address: a video on a
    # host the bot must refuse to download from (the file itself stays served here).
    result_base_url: str | None = None
    # The submit answer's status, response and cancel URLs start with this instead of the
    # emulator's address: an answer pointing at a host the bot must not send its key to.
    handle_base_url: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ScriptError(f"outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}")
        if self.queue_seconds < 0 or self.run_seconds < 0:
            raise ScriptError("queue_seconds and run_seconds must not be negative")
        if self.queue_position < 0:
            raise ScriptError("queue_position must not be negative")
        if self.stream_break_after is not None and self.stream_break_after < 0:
            raise ScriptError("stream_break_after must not be negative")
        if self.webhook_copies < 0:
            raise ScriptError("webhook_copies must not be negative")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobScript:
        """Build a script from the JSON the /_emulator/script control endpoint receives."""
        return _from_json(cls, data)


@dataclass(frozen=True)
class Fault:
    """A failure answered instead of (or after) the real thing, for `times` requests of one kind.

    status answers that HTTP status (429 also gets Retry-After when retry_after is set; error_type
    adds X-Fal-Error-Type and an error_type body field; request_id_header adds x-fal-request-id;
    timeout_type_user answers 504 with X-Fal-Request-Timeout-Type: user). reset drops the TCP
    connection without an answer. delay answers late. For kind="submit", after_accept creates the
    job first (it is counted and will run) and only then applies the delay/reset/status.
    """

    kind: RequestKind
    status: int | None = None
    retry_after: float | None = None
    reset: bool = False
    delay: float = 0.0
    times: int = 1
    error_type: str | None = None
    request_id_header: bool = False
    timeout_type_user: bool = False
    body: Any = None
    after_accept: bool = False

    def __post_init__(self) -> None:
        if self.kind not in REQUEST_KINDS:
            raise ScriptError(f"kind must be one of {', '.join(REQUEST_KINDS)}, not {self.kind!r}")
        if self.times < 1:
            raise ScriptError("times must be at least 1")
        if self.delay < 0:
            raise ScriptError("delay must not be negative")
        if self.after_accept and self.kind != "submit":
            raise ScriptError("after_accept only applies to kind='submit'")

    @property
    def answer_status(self) -> int | None:
        """The HTTP status this fault answers with, if it answers at all."""
        if self.status is not None:
            return self.status
        if self.timeout_type_user:
            return 504
        return None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from the JSON the /_emulator/faults control endpoint receives."""
        return _from_json(cls, data)


def _from_json(cls: type[_Scripted], data: dict[str, Any]) -> _Scripted:
    if not isinstance(data, dict):
        raise ScriptError(f"{cls.__name__} must be a JSON object")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ScriptError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
    values = dict(data)
    if "error_loc" in values:
        values["error_loc"] = tuple(values["error_loc"])
    try:
        return cls(**values)
    except TypeError as exc:
        raise ScriptError(f"bad {cls.__name__}: {exc}") from None
