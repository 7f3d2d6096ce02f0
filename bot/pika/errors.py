"""The ways a Pika request can be wrong, each with a message a member can read."""

from __future__ import annotations


class InvalidRequest(ValueError):
    """Option values or a combination of them that Pika does not accept.

    The message says what was wrong and what is allowed; `option` names the offending option
    when there is one, so a command layer can point at it.
    """

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.option = option


class MissingInputUrl(LookupError):
    """A request's input file has no URL yet, so its fal body cannot be built."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"No URL was given for input file {sha256[:12]}….")
        self.sha256 = sha256
