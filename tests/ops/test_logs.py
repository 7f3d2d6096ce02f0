"""Operator logs: one line per event, ids attached, the token and key never written."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.ops.logs import (
    REDACTED,
    LogFormat,
    Redactor,
    bind_log_context,
    log_context,
    make_handler,
    setup_logging,
)

DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.k3y-of-the-bot_0123456789abcdefghij"
FAL_KEY = "5f3c1b2a-0000-4e6f-9a1b-000000000000:0123456789abcdef0123456789abcdef"
SECRETS = (DISCORD_TOKEN, FAL_KEY)


class Captured:
    """A logger wired to one handler writing into a string."""

    def __init__(self, fmt: LogFormat) -> None:
        self.stream = io.StringIO()
        self.logger = logging.getLogger(f"test.logs.{fmt}.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(make_handler(fmt=fmt, secrets=SECRETS, stream=self.stream))

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()


@pytest.fixture(params=["text", "json"])
def captured(request: pytest.FixtureRequest) -> Captured:
    return Captured(request.param)


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def log_everything(logger: logging.Logger) -> None:
    """A record carrying both secrets in its message, args, extras and traceback."""
    try:
        raise RuntimeError(f"request failed with Authorization: Key {FAL_KEY}")
    except RuntimeError:
        logger.exception(
            "login with %s failed; key %r",
            DISCORD_TOKEN,
            FAL_KEY,
            extra={"header": f"Bot {DISCORD_TOKEN}", "job_id": "abcd2345"},
        )


def test_secrets_are_redacted_everywhere_in_a_record(captured: Captured) -> None:
    log_everything(captured.logger)
    output = captured.stream.getvalue()
    assert leaked(output) == []
    assert REDACTED in output
    assert "RuntimeError" in output
    assert "abcd2345" in output


def test_one_event_is_one_line_even_with_a_traceback(captured: Captured) -> None:
    log_everything(captured.logger)
    captured.logger.info("second event")
    assert len(captured.lines) == 2


def test_json_lines_carry_the_fields_an_operator_filters_on() -> None:
    captured = Captured("json")
    with log_context(job_id="abcd2345", guild_id=11, user_id=22):
        captured.logger.warning("job %s stuck", "abcd2345")
    event = json.loads(captured.lines[0])
    assert event["level"] == "WARNING"
    assert event["msg"] == "job abcd2345 stuck"
    assert (event["job_id"], event["guild_id"], event["user_id"]) == ("abcd2345", 11, 22)
    assert event["ts"].endswith("Z")


def test_text_lines_name_the_job_guild_and_member() -> None:
    captured = Captured("text")
    with log_context(job_id="abcd2345", guild_id=11, user_id=22):
        captured.logger.info("delivered")
    captured.logger.info("outside")
    inside, outside = captured.lines
    assert " INFO " in inside
    assert "job=abcd2345 guild=11 user=22 delivered" in inside
    assert "job=" not in outside


async def test_ids_bound_in_a_task_stay_in_that_task() -> None:
    captured = Captured("text")

    async def job(job_id: str, ready: asyncio.Event, go: asyncio.Event) -> None:
        bind_log_context(job_id=job_id)
        ready.set()
        await go.wait()
        captured.logger.info("working")

    ready_a, ready_b, go = asyncio.Event(), asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(job("aaaa2222", ready_a, go)),
        asyncio.create_task(job("bbbb3333", ready_b, go)),
    ]
    await ready_a.wait()
    await ready_b.wait()
    go.set()
    await asyncio.gather(*tasks)
    captured.logger.info("main task")
    assert sorted(line.split(" ", 3)[3] for line in captured.lines[:2]) == [
        "job=aaaa2222 working",
        "job=bbbb3333 working",
    ]
    assert "job=" not in captured.lines[2]


def test_credentials_of_any_shape_are_redacted() -> None:
    redact = Redactor()
    assert redact("Authorization: Bot abc.def.ghijklmnop") == f"Authorization: Bot {REDACTED}"
    assert redact("Authorization: Key abcd1234:ffff") == f"Authorization: Key {REDACTED}"
    assert redact(f"token {DISCORD_TOKEN} here") == f"token {REDACTED} here"
    webhook = "POST https://discord.com/api/v10/webhooks/123/aW50ZXJhY3Rpb246MTIzNDU2Nzg5/messages"
    assert redact(webhook) == (f"POST https://discord.com/api/v10/webhooks/123/{REDACTED}/messages")
    callback = "/interactions/987/aW50ZXJhY3Rpb246OTg3NjU0MzIx/callback"
    assert redact(callback) == f"/interactions/987/{REDACTED}/callback"
    assert redact("job abcd2345 delivered in guild 123") == "job abcd2345 delivered in guild 123"


def test_a_broken_format_string_still_logs_the_event() -> None:
    captured = Captured("text")
    captured.logger.info("two %s %s", "only-one")
    assert len(captured.lines) == 1
    assert "unformattable" in captured.lines[0]


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_setup_applies_level_and_format_to_every_library(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    setup_logging(level="WARNING", fmt="json", secrets=SECRETS, stream=stream)
    logging.getLogger("discord.http").info("quiet %s", DISCORD_TOKEN)
    logging.getLogger("discord.http").warning("loud %s", DISCORD_TOKEN)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["msg"] == f"loud {REDACTED}"


def test_setup_again_replaces_its_own_handler_only(root_logger: logging.Logger) -> None:
    other = logging.NullHandler()
    root_logger.addHandler(other)
    first = setup_logging(stream=io.StringIO())
    second = setup_logging(stream=io.StringIO())
    assert first not in root_logger.handlers
    assert second in root_logger.handlers
    assert other in root_logger.handlers
