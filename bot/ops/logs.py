"""Logging for operators: one line per event, job/guild/member ids attached, secrets redacted."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

REDACTED = "[redacted]"
# The ids an event line carries when they are known, in this order.
CONTEXT_FIELDS = ("job_id", "guild_id", "user_id")

# Authorization schemes as they appear in headers and in libraries' debug output.
_AUTH_HEADER = re.compile(r"\b(Bot|Key|Bearer)(\s+)[A-Za-z0-9._~+/=:-]{8,}")
# Interaction tokens travel in webhook and callback URLs, which discord.py logs at DEBUG.
_WEBHOOK_URL = re.compile(r"(/webhooks/\d+/)[A-Za-z0-9._-]{20,}")
_CALLBACK_URL = re.compile(r"(/interactions/\d+/)[A-Za-z0-9._-]{20,}")
# A Discord bot token has this shape even when it is not the configured one.
_DISCORD_TOKEN = re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}\b")

_context: contextvars.ContextVar[Mapping[str, object] | None] = contextvars.ContextVar(
    "pikabot_log_context", default=None
)


def bind_log_context(**ids: object) -> None:
    """Attach these ids to every log line for the rest of the current task.

    Each asyncio task runs in its own copy of the context, so this never leaks into the task
    that spawned it or into other jobs' tasks.
    """
    _context.set({**(_context.get() or {}), **{k: v for k, v in ids.items() if v is not None}})


@contextmanager
def log_context(**ids: object) -> Iterator[None]:
    """Attach these ids (job_id, guild_id, user_id) to every log line of this task meanwhile.

    Context variables are copied into each new task, so a job's task keeps its ids in
    everything it calls, without passing them to every logger.
    """
    merged = {**(_context.get() or {}), **{k: v for k, v in ids.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class Redactor:
    """Replaces the configured secrets, and anything shaped like a credential, in text."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s and len(s.strip()) >= 4}, key=len)[::-1]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _AUTH_HEADER.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
        text = _WEBHOOK_URL.sub(lambda m: m[1] + REDACTED, text)
        text = _CALLBACK_URL.sub(lambda m: m[1] + REDACTED, text)
        return _DISCORD_TOKEN.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record so neither its message, its args, its extras nor its traceback can
    carry a secret; also stamps the task's job/guild/member ids on it.

    Installed on the handler (not a logger) so it sees records of every library's loggers.
    """

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get() or {}
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None and name in context:
                setattr(record, name, context[name])
        try:
            message = record.getMessage()
        except Exception as exc:  # a bad format string must not lose the event
            message = f"{record.msg!r} (unformattable: {exc!r})"
        record.msg = self._redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self._redact(value))
        return True


_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """`2026-11-21T14:00:00.000Z INFO bot.jobs.runner job=ab12cd34 guild=1 user=2 message`.

    A traceback is folded into the same line (as `| ...`), so one event stays one line.
    """

    def format(self, record: logging.LogRecord) -> str:
        extras = _extras(record)
        ids = [f"{k.removesuffix('_id')}={extras.pop(k)}" for k in CONTEXT_FIELDS if k in extras]
        rest = [f"{k}={v}" for k, v in sorted(extras.items())]
        line = " ".join(
            [_timestamp(record), record.levelname, record.name, *ids, *rest, record.getMessage()]
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += " | " + record.exc_text.replace("\n", " | ")
        if record.stack_info:
            line += " | " + record.stack_info.replace("\n", " | ")
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the ids, other extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extras(record).items():
            event[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            event["exc"] = record.exc_text
        if record.stack_info:
            event["stack"] = record.stack_info
        return json.dumps(event, ensure_ascii=False)


LogFormat = Literal["text", "json"]
_OURS = "_pikabot_handler"


def make_handler(
    *, fmt: LogFormat = "text", secrets: Iterable[str | None] = (), stream: TextIO | None = None
) -> logging.Handler:
    """A stream handler with the chosen format and the redacting filter installed."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter(Redactor(secrets)))
    return handler


def setup_logging(
    *,
    level: str | int = "INFO",
    fmt: LogFormat = "text",
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every logger's records through one redacting handler on the root logger.

    Replaces the handler an earlier call installed (calling it again once the settings are
    known is how the level, format and secrets are applied); others' handlers stay. Returns
    the handler.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _OURS, False):
            root.removeHandler(old)
    handler = make_handler(fmt=fmt, secrets=secrets, stream=stream)
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
