"""Whole-suite checks over what tests record: secrets in logs, Discord traffic, fal submissions
and the bot's log files; allowed_mentions on every message the bot writes."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.emulator import FalEmulator
from bot.sandbox.fakediscord import FakeDiscord
from bot.sandbox.fakediscord.records import RecordedRequest

_EXCERPT = 60


@dataclass(frozen=True)
class Leak:
    """A secret found somewhere; it names the secret and never carries its value."""

    secret: str
    where: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.secret} in {self.where}: …{self.excerpt}…"


@dataclass
class LeakScan:
    """Searches every text handed to it for known secret values and secret shapes."""

    secrets: Mapping[str, str]
    shapes: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    leaks: list[Leak] = field(default_factory=list)
    scanned: int = 0

    def text(self, where: str, text: str) -> None:
        self.scanned += 1
        for name, value in self.secrets.items():
            start = text.find(value)
            if start >= 0:
                self._found(name, where, text, start, start + len(value))
        for name, shape in self.shapes.items():
            match = shape.search(text)
            if match:
                self._found(name, where, text, match.start(), match.end())

    def _found(self, name: str, where: str, text: str, start: int, end: int) -> None:
        before = text[max(0, start - _EXCERPT) : start]
        after = text[end : end + _EXCERPT]
        excerpt = f"{before}«{name}»{after}"
        for other in self.secrets.values():  # a report must not print any secret either
            excerpt = excerpt.replace(other, "«secret»")
        self.leaks.append(Leak(name, where, excerpt))

    def data(self, where: str, value: Any) -> None:
        """A JSON-like value (or bytes), as one text."""
        if value is None:
            return
        if isinstance(value, bytes | bytearray):
            self.text(where, bytes(value).decode("latin-1"))
        elif isinstance(value, str):
            self.text(where, value)
        else:
            self.text(where, json.dumps(value, default=str, ensure_ascii=False))

    def record(self, record: logging.LogRecord) -> None:
        """A log record: its message, its extras, and its traceback."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string still has its parts scanned
            message = f"{record.msg!r} {record.args!r}"
        parts = [message, *(str(v) for k, v in vars(record).items() if k not in _STANDARD)]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        self.text(f"log {record.name} {record.levelname}", "\n".join(parts))

    def fake(self, fake: FakeDiscord) -> None:
        """Every request the fake Discord recorded (the Authorization header is never kept),
        every gateway frame both ways, and every message as it stands."""
        for request in fake.requests:
            where = f"Discord {request.method} {request.path}"
            self.text(where + " path/query", request.path + json.dumps(request.query))
            self.data(where + " headers", request.headers)
            self.data(where + " body", request.json)
            self.data(where + " response", request.response)
            for upload in request.files:
                self.data(f"{where} file {upload.filename}", upload.filename.encode() + upload.data)
        for frame in fake.frames:
            self.data(f"gateway frame {frame.direction} op={frame.op} t={frame.t}", frame.data)

    def fal(self, emulator: FalEmulator) -> None:
        """Every submit fal received (headers without Authorization), webhooks it sent."""
        for submission in emulator.submissions:
            self.data(f"fal submit {submission.endpoint_id}", submission.to_json())
        for delivery in emulator.webhook_deliveries:
            self.text("fal webhook URL", delivery.url)

    def file(self, path: Path) -> None:
        self.data(f"file {path}", path.read_bytes())

    def report(self) -> str:
        return "\n".join(str(leak) for leak in self.leaks)


_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class ScanHandler(logging.Handler):
    """A logging handler that hands each record to a LeakScan (before any filter rewrites it)."""

    def __init__(self, scan: LeakScan) -> None:
        super().__init__(logging.NOTSET)
        self.scan = scan

    def emit(self, record: logging.LogRecord) -> None:
        self.scan.record(record)


# Routes that create or edit a message, and where its fields are in the body.
_MESSAGE_ROUTES = (
    re.compile(r"/channels/\d+/messages(/\d+)?"),
    re.compile(r"/webhooks/\d+/(?P<token>[^/]+)(/messages/(\d+|@original))?"),
)
_CALLBACK = re.compile(r"/interactions/\d+/(?P<token>[^/]+)/callback")
_MESSAGE_CALLBACKS = frozenset({4, 7})  # CHANNEL_MESSAGE_WITH_SOURCE, UPDATE_MESSAGE


@dataclass
class MentionCheck:
    """Every request by which the bot writes a message with content or embeds must carry
    allowed_mentions that ping nobody but (at most) the member it answers."""

    problems: list[str] = field(default_factory=list)
    checked: int = 0

    def fake(self, fake: FakeDiscord) -> None:
        """Check a fake PikaBot ran against (it synced /pika and /pikaadmin); other fakes carry
        messages that tests' own stand-in clients sent, which are not the bot's."""
        synced = {c["name"] for scope in fake.commands.scopes.values() for c in scope}
        if not {"pika", "pikaadmin"} <= synced:
            return
        askers = {i.user_id for i in fake.interactions.values()}
        for request in fake.requests:
            if request.method not in ("POST", "PATCH"):
                continue
            message, token = _message_of(request)
            if message is None or not (message.get("content") or message.get("embeds")):
                continue
            self.checked += 1
            where = f"{request.method} {request.route or request.path}"
            interaction = fake.interaction_by_token(token) if token else None
            requester = {interaction.user_id} if interaction is not None else askers
            self._check(where, message, requester)

    def _check(self, where: str, message: Mapping[str, Any], requesters: set[int]) -> None:
        allowed = message.get("allowed_mentions")
        if not isinstance(allowed, Mapping):
            self.problems.append(f"{where}: no allowed_mentions ({_preview(message)})")
            return
        parse = set(allowed.get("parse") or [])
        if parse:
            self.problems.append(f"{where}: allowed_mentions.parse={sorted(parse)}")
        if allowed.get("roles"):
            self.problems.append(f"{where}: allowed_mentions.roles={allowed['roles']}")
        users = {int(u) for u in allowed.get("users") or []}
        if len(users) > 1 or not users <= requesters:
            self.problems.append(
                f"{where}: allowed_mentions.users={sorted(users)}, not only the requester"
            )

    def report(self) -> str:
        return "\n".join(self.problems)


def _message_of(request: RecordedRequest) -> tuple[Mapping[str, Any] | None, str | None]:
    """The message fields a request writes, and the interaction token in its path (if any)."""
    body = request.json if isinstance(request.json, Mapping) else None
    if body is None:
        return None, None
    callback = _CALLBACK.fullmatch(request.path)
    if callback is not None:
        if body.get("type") not in _MESSAGE_CALLBACKS:
            return None, None
        data = body.get("data")
        return (data if isinstance(data, Mapping) else None), callback["token"]
    for route in _MESSAGE_ROUTES:
        match = route.fullmatch(request.path)
        if match is not None:
            return body, match.groupdict().get("token")
    return None, None


def _preview(message: Mapping[str, Any]) -> str:
    return repr(str(message.get("content") or "")[:60])


def scan_files(scan: LeakScan, roots: Iterable[Path], patterns: Iterable[str]) -> int:
    """Scan every file under `roots` matching one of the glob `patterns`; how many there were."""
    count = 0
    for root in roots:
        for pattern in patterns:
            for path in root.rglob(pattern):
                if path.is_file():
                    scan.file(path)
                    count += 1
    return count
