"""The whole-suite checks of tests/conftest.py can fail: planted secrets and unsafe mentions are
found wherever they are put, and the checks are installed for the session."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.emulator import FalEmulator
from bot.sandbox.fakediscord import FakeDiscord
from tests.secrets import SHAPES
from tests.security.scan import LeakScan, MentionCheck, ScanHandler, scan_files

PLANTED = "planted-secret-dGhpcyBpcyBub3QgcmVhbA"


def planted_scan() -> LeakScan:
    return LeakScan({"planted": PLANTED}, SHAPES)


def test_the_checks_are_installed_for_the_whole_session() -> None:
    assert any(isinstance(h, ScanHandler) for h in logging.getLogger().handlers)
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    assert FakeDiscord.on_close
    assert FalEmulator.on_close


def test_a_secret_in_any_part_of_a_log_record_is_found_and_never_printed() -> None:
    scan = planted_scan()
    logger = logging.getLogger("tests.security.planted")
    logger.propagate = False
    handler = ScanHandler(scan)
    logger.addHandler(handler)
    try:
        logger.warning("token %s", PLANTED)
        logger.warning("clean", extra={"header": f"Key {PLANTED}"})
        try:
            raise RuntimeError(f"failed with {PLANTED}")
        except RuntimeError:
            logger.exception("clean message")
        logger.warning("nothing to see")
    finally:
        logger.removeHandler(handler)
    assert [leak.secret for leak in scan.leaks] == ["planted"] * 3
    assert PLANTED not in scan.report()
    assert "«planted»" in scan.report()


def test_a_sandbox_secret_is_found_by_its_shape() -> None:
    scan = planted_scan()
    scan.text("somewhere", "connecting with sandbox-" + "A1b2_C3d4-" * 3 + "xy now")
    scan.text("a temp folder", "/tmp/pikabot-sandbox-abcd1234/pikabot.sqlite3")
    assert [leak.where for leak in scan.leaks] == ["somewhere"]


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    # This fake carries planted problems: keep it away from the session's own checks.
    monkeypatch.setattr(FakeDiscord, "on_close", [])
    async with FakeDiscord(token=PLANTED) as fake:
        yield fake


async def post(fake: FakeDiscord, path: str, body: dict[str, object], **headers: str) -> None:
    async with httpx.AsyncClient(base_url=fake.api_url) as client:
        response = await client.post(
            path, json=body, headers={"Authorization": f"Bot {PLANTED}", **headers}
        )
        assert response.status_code < 300, response.text


async def test_a_secret_in_discord_traffic_is_found_but_not_in_the_stripped_authorization(
    fake: FakeDiscord,
) -> None:
    channel = f"/channels/{fake.channel.id}/messages"
    await post(fake, channel, {"content": "harmless"})
    scan = planted_scan()
    scan.fake(fake)
    assert scan.leaks == []  # the bot token went in Authorization only, which the fake drops

    await post(fake, channel, {"content": f"oops {PLANTED}"})
    await post(fake, channel, {"content": "fine"}, **{"X-Debug": PLANTED})
    scan.fake(fake)
    places = sorted(leak.where.rsplit(" ", 1)[-1] for leak in scan.leaks)
    assert places == ["body", "headers", "response"]


def test_a_secret_in_a_bot_log_file_is_found(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "bot.log").write_text(f"INFO bot started with {PLANTED}\n")
    (tmp_path / "run" / "other.txt").write_text(PLANTED)
    scan = planted_scan()
    assert scan_files(scan, [tmp_path], ["bot.log"]) == 1
    assert len(scan.leaks) == 1


async def sync_pika_commands(fake: FakeDiscord) -> None:
    """Stand in for PikaBot's sync, which is what marks a fake as the bot's."""
    commands = [
        {"name": "pika", "description": "p", "type": 1},
        {"name": "pikaadmin", "description": "a", "type": 1},
    ]
    path = f"/applications/{fake.application_id}/guilds/{fake.guild.id}/commands"
    async with httpx.AsyncClient(base_url=fake.api_url) as client:
        response = await client.put(
            path, json=commands, headers={"Authorization": f"Bot {PLANTED}"}
        )
        assert response.status_code == 200, response.text


async def test_messages_that_could_ping_others_are_flagged(fake: FakeDiscord) -> None:
    await sync_pika_commands(fake)
    channel = f"/channels/{fake.channel.id}/messages"
    other = fake.owner.id
    await post(fake, channel, {"content": "@everyone no allowed_mentions"})
    await post(fake, channel, {"content": "x", "allowed_mentions": {"parse": ["everyone"]}})
    await post(fake, channel, {"embeds": [{"title": "t"}], "allowed_mentions": {"roles": ["1"]}})
    await post(fake, channel, {"content": "y", "allowed_mentions": {"users": [str(other)]}})
    await post(fake, channel, {"content": "safe", "allowed_mentions": {"parse": []}})
    check = MentionCheck()
    check.fake(fake)
    assert check.checked == 5
    assert len(check.problems) == 4, check.report()
    for words in ("no allowed_mentions", "parse=['everyone']", "roles=['1']", f"users=[{other}]"):
        assert words in check.report()


async def test_fakes_the_bot_never_used_are_not_judged_by_the_mention_rule(
    fake: FakeDiscord,
) -> None:
    await post(fake, f"/channels/{fake.channel.id}/messages", {"content": "@everyone hi"})
    check = MentionCheck()
    check.fake(fake)
    assert check.checked == 0
