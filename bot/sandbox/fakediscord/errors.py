"""Errors of the fake Discord: a test's misuse (raised in the test) and Discord API errors."""

from __future__ import annotations

from typing import Any


class FakeDiscordError(Exception):
    """A test asked the fake Discord for something Discord would not allow or cannot do."""


class CommandMismatch(FakeDiscordError):
    """A test invoked a command or option the bot did not sync, or gave a value it would reject."""


class NoBotConnected(FakeDiscordError):
    """An event must go over the gateway but no bot session is connected."""


class ValidationFailed(AssertionError):
    """Bodies the bot sent broke Discord's OpenAPI schema, or hit routes the fake does not know."""


class ApiError(Exception):
    """A Discord error answer: HTTP status, JSON error code, message (form errors for 50035)."""

    def __init__(
        self,
        status: int,
        code: int | None,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body as Discord sends it."""
        body: dict[str, Any] = {"message": self.message}
        if self.code is not None:
            body["code"] = self.code
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def unknown(what: str, code: int) -> ApiError:
    """A 404 like "Unknown Channel" (10003)."""
    return ApiError(404, code, f"Unknown {what}")


def invalid_form(field: str, error_code: str, message: str) -> ApiError:
    """A 400 "Invalid Form Body" (50035) naming one field, shaped like Discord's."""
    errors: dict[str, Any] = {}
    node = errors
    parts = field.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = {"_errors": [{"code": error_code, "message": message}]}
    return ApiError(400, 50035, "Invalid Form Body", errors=errors)


def missing_permissions() -> ApiError:
    """403 with code 50013."""
    return ApiError(403, 50013, "Missing Permissions")


def missing_access() -> ApiError:
    """403 with code 50001."""
    return ApiError(403, 50001, "Missing Access")
