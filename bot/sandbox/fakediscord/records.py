"""What the fake Discord remembers: requests, messages (bytes, history) and interactions."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Payload = dict[str, Any]

EPHEMERAL = 1 << 6
LOADING = 1 << 7

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


@dataclass(frozen=True)
class UploadedFile:
    """One `files[n]` part of a multipart request, bytes kept."""

    field: str
    filename: str
    content_type: str | None
    data: bytes = dataclasses.field(repr=False)


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the fake answered; the bot token is never kept, only whether it was sent."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: tuple[UploadedFile, ...]
    headers: dict[str, str]
    bot_auth: bool
    status: int
    response: Any
    at: datetime
    route: str | None
    api: bool = True
    violations: tuple[str, ...] = ()

    @property
    def unknown(self) -> bool:
        """True when no route of the fake matched (the request was answered 404)."""
        return self.api and self.route is None

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


@dataclass
class StoredAttachment:
    """An attachment with its bytes, served by the fake CDN at `url`."""

    id: int
    filename: str
    data: bytes = field(repr=False)
    url: str = ""
    content_type: str | None = None
    description: str | None = None
    width: int | None = None
    height: int | None = None
    ephemeral: bool = False
    title: str | None = None
    duration_secs: float | None = None
    downloads: int = 0

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)

    def to_payload(self) -> Payload:
        """The attachment object as the API sends it."""
        payload: Payload = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
        }
        if self.content_type is not None:
            payload["content_type"] = self.content_type
        if self.description is not None:
            payload["description"] = self.description
        if self.title is not None:
            payload["title"] = self.title
        if self.width is not None and self.height is not None:
            payload["width"] = self.width
            payload["height"] = self.height
        if self.duration_secs is not None:
            payload["duration_secs"] = self.duration_secs
        if self.ephemeral:
            payload["ephemeral"] = True
        return payload


@dataclass(frozen=True)
class MessageVersion:
    """A message as it was before one edit."""

    content: str
    embeds: list[Payload]
    components: list[Payload]
    attachment_ids: tuple[int, ...]
    flags: int
    at: datetime


Via = Literal["bot", "interaction", "user"]


@dataclass(frozen=True)
class Pings:
    """The users and roles a message notifies, and whether it pings @everyone/@here."""

    users: frozenset[int]
    roles: frozenset[int]
    everyone: bool

    @classmethod
    def of(cls, content: str, allowed: Payload | None) -> Pings:
        """Discord's rules: without allowed_mentions everything in the content pings."""
        users = {int(u) for u in _USER_MENTION.findall(content)}
        roles = {int(r) for r in _ROLE_MENTION.findall(content)}
        everyone = "@everyone" in content or "@here" in content
        if allowed is None:
            return cls(frozenset(users), frozenset(roles), everyone)
        parse = set(allowed.get("parse") or [])
        allowed_users = {int(u) for u in allowed.get("users") or []}
        allowed_roles = {int(r) for r in allowed.get("roles") or []}
        return cls(
            users=frozenset(u for u in users if "users" in parse or u in allowed_users),
            roles=frozenset(r for r in roles if "roles" in parse or r in allowed_roles),
            everyone=everyone and "everyone" in parse,
        )


@dataclass
class StoredMessage:
    """A message in its current state, with its edit history and how it was sent."""

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str
    created_at: datetime
    via: Via
    embeds: list[Payload] = field(default_factory=list)
    components: list[Payload] = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    flags: int = 0
    allowed_mentions: Payload | None = None
    tts: bool = False
    type: int = 0
    interaction_id: int | None = None
    message_reference: Payload | None = None
    nonce: str | None = None  # as sent on create; Discord echoes it in the create answer
    edited_at: datetime | None = None
    deleted: bool = False
    history: list[MessageVersion] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        """Only the invoking member sees it (flag 64)."""
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """Still the "is thinking..." placeholder of a deferred reply."""
        return bool(self.flags & LOADING)

    @property
    def visibility(self) -> Literal["ephemeral", "public"]:
        """Who can see it."""
        return "ephemeral" if self.ephemeral else "public"

    def snapshot(self) -> MessageVersion:
        """The current state, for the edit history."""
        return MessageVersion(
            content=self.content,
            embeds=list(self.embeds),
            components=list(self.components),
            attachment_ids=tuple(a.id for a in self.attachments),
            flags=self.flags,
            at=self.edited_at or self.created_at,
        )

    @property
    def pings(self) -> Pings:
        """Who this message notifies, applying allowed_mentions to the mentions in its content."""
        return Pings.of(self.content, self.allowed_mentions)

    def find_component(self, custom_id: str) -> Payload | None:
        """The component with this custom_id anywhere in the message's layout."""
        return _find_component(self.components, custom_id)


def _find_component(components: list[Payload], custom_id: str) -> Payload | None:
    for component in components:
        if component.get("custom_id") == custom_id:
            return component
        children = list(component.get("components") or [])
        for key in ("component", "accessory"):
            if isinstance(component.get(key), dict):
                children.append(component[key])
        found = _find_component(children, custom_id)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class InteractionResponse:
    """One accepted interaction callback: its type, flags and data as sent."""

    type: int
    data: Payload
    at: datetime

    @property
    def flags(self) -> int:
        """The callback's message flags (64 = ephemeral)."""
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        """Whether the callback asked for an ephemeral reply."""
        return bool(self.flags & EPHEMERAL)


@dataclass
class FakeInteraction:
    """An interaction the fake sent to the bot, and everything the bot answered through it."""

    id: int
    token: str
    type: int
    payload: Payload
    created_at: datetime
    user_id: int
    channel_id: int
    guild_id: int | None
    responses: list[InteractionResponse] = field(default_factory=list)
    original: StoredMessage | None = None
    followups: list[StoredMessage] = field(default_factory=list)
    source_message: StoredMessage | None = None

    @property
    def response(self) -> InteractionResponse | None:
        """The callback that acknowledged it, if any."""
        return self.responses[0] if self.responses else None

    @property
    def acknowledged(self) -> bool:
        """Whether a callback was accepted."""
        return bool(self.responses)

    @property
    def deferred(self) -> bool:
        """Acknowledged with type 5 (thinking) or 6 (deferred update)."""
        return self.response is not None and self.response.type in (5, 6)

    @property
    def modal(self) -> Payload | None:
        """The modal (callback type 9 data) the bot opened in answer, if any."""
        for response in self.responses:
            if response.type == 9:
                return response.data
        return None
