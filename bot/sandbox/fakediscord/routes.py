"""The REST routes discord.py uses, as the fake knows them: templates, auth, matching, calls."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .records import UploadedFile
from .world import Payload


@dataclass(frozen=True)
class Call:
    """One parsed REST request as the handlers see it."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: tuple[UploadedFile, ...]
    bot_auth: bool

    @property
    def body(self) -> Payload:
        """The JSON object body (empty when there is none)."""
        return self.json if isinstance(self.json, dict) else {}

    def flag(self, name: str) -> bool:
        """A boolean query parameter (Discord accepts true/1)."""
        return self.query.get(name, "").lower() in ("1", "true")


Reply = tuple[int, Any]
Handler = Callable[..., Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    """A REST route template; `bot` routes need `Authorization: Bot ...`."""

    method: str
    template: str
    handler: str
    bot: bool = True

    @property
    def pattern(self) -> re.Pattern[str]:
        """The template as a regex with one named group per {parameter}."""
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        return re.compile(regex)


# Literal routes come before templated ones that would also match them (@me, @original).
ROUTES = (
    Route("GET", "/users/@me", "get_me"),
    Route("GET", "/users/@me/guilds", "get_my_guilds"),
    Route("POST", "/users/@me/channels", "create_dm"),
    Route("GET", "/users/{user_id}", "get_user"),
    Route("GET", "/oauth2/applications/@me", "get_application"),
    Route("GET", "/applications/@me", "get_application"),
    Route("GET", "/gateway", "get_gateway", bot=False),
    Route("GET", "/gateway/bot", "get_gateway_bot"),
    Route("GET", "/applications/{application_id}/commands", "get_commands"),
    Route("PUT", "/applications/{application_id}/commands", "put_commands"),
    Route("GET", "/applications/{application_id}/guilds/{guild_id}/commands", "get_commands"),
    Route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", "put_commands"),
    Route(
        "POST",
        "/interactions/{interaction_id}/{interaction_token}/callback",
        "callback",
        bot=False,
    ),
    Route("POST", "/webhooks/{application_id}/{token}", "followup", bot=False),
    Route(
        "GET",
        "/webhooks/{application_id}/{token}/messages/{message_id}",
        "get_webhook_message",
        bot=False,
    ),
    Route(
        "PATCH",
        "/webhooks/{application_id}/{token}/messages/{message_id}",
        "edit_webhook_message",
        bot=False,
    ),
    Route(
        "DELETE",
        "/webhooks/{application_id}/{token}/messages/{message_id}",
        "delete_webhook_message",
        bot=False,
    ),
    Route("GET", "/channels/{channel_id}", "get_channel"),
    Route("GET", "/channels/{channel_id}/messages", "list_messages"),
    Route("POST", "/channels/{channel_id}/messages", "create_message"),
    Route("GET", "/channels/{channel_id}/messages/{message_id}", "get_message"),
    Route("PATCH", "/channels/{channel_id}/messages/{message_id}", "edit_message"),
    Route("DELETE", "/channels/{channel_id}/messages/{message_id}", "delete_message"),
    Route("POST", "/channels/{channel_id}/typing", "typing"),
    Route("GET", "/guilds/{guild_id}", "get_guild"),
    Route("GET", "/guilds/{guild_id}/channels", "get_guild_channels"),
    Route("GET", "/guilds/{guild_id}/roles", "get_guild_roles"),
    Route("GET", "/guilds/{guild_id}/members/{user_id}", "get_member"),
)
_COMPILED = tuple((route, route.pattern) for route in ROUTES)


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The first route matching a method and API path, with its parameters."""
    for route, pattern in _COMPILED:
        if route.method != method:
            continue
        found = pattern.fullmatch(path)
        if found:
            return route, found.groupdict()
    return None
