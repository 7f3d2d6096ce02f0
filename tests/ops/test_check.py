"""`python -m bot check` against the fake Discord and the fal emulator, in-process."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.__main__ import main
from bot.config import Settings, load_settings
from bot.emulator import FalEmulator
from bot.ops.check import (
    BOT_PERMISSIONS,
    bot_permissions,
    client_id_from_token,
    invite_url,
    run_check,
)
from bot.pika import ENDPOINTS
from bot.sandbox.fakediscord import FakeDiscord
from bot.sandbox.fakediscord.world import (
    ATTACH_FILES,
    BOT_ROLE_DEFAULT,
    EMBED_LINKS,
    EVERYONE_DEFAULT,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
)
from tests.secrets import CHECK

DISCORD_TOKEN, FAL_KEY = CHECK
# The invite's permissions integer, as the operator's guide quotes it.
INVITE_PERMISSIONS = 274878024704


@dataclass
class Fakes:
    discord: FakeDiscord
    fal: FalEmulator
    tmp: Path

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "discord_token": DISCORD_TOKEN,
            "fal_key": FAL_KEY,
            "database": self.tmp / "pikabot.sqlite3",
            "data_dir": self.tmp / "data",
            "fal_queue_url": self.fal.base_url,
            "fal_rest_url": self.fal.base_url,
            "discord_api_url": self.discord.api_url,
            "discord_gateway_url": self.discord.gateway_url,
            **overrides,
        }
        return load_settings(**values)

    async def check(self, **overrides: Any) -> tuple[int, str]:
        out = io.StringIO()
        code = await run_check(self.settings(**overrides), out=out)
        return code, out.getvalue()


@pytest.fixture
async def fakes(tmp_path: Path) -> AsyncIterator[Fakes]:
    async with (
        FakeDiscord(token=DISCORD_TOKEN) as fake,
        FalEmulator(key=FAL_KEY) as fal,
    ):
        yield Fakes(fake, fal, tmp_path)


async def test_a_ready_bot_passes_every_check(fakes: Fakes) -> None:
    code, out = await fakes.check()
    assert code == 0, out
    for endpoint in ENDPOINTS:
        assert f"{endpoint.id}: answers" in out
    assert f"fal key: accepted ({len(ENDPOINTS)} of {len(ENDPOINTS)} endpoints answer)" in out
    assert f"logged in as Pika (id {fakes.discord.bot_user.id})" in out
    assert f"Test Server ({fakes.discord.guild.id}): all permissions the bot needs" in out
    assert f"permissions={INVITE_PERMISSIONS}" in out
    assert "schema version" in out
    assert "prices (credits):" in out
    assert out.rstrip().endswith("check: everything is ready")


async def test_the_endpoint_probe_starts_no_job(fakes: Fakes) -> None:
    code, _ = await fakes.check()
    assert code == 0
    assert fakes.fal.counts["submit"] == len(ENDPOINTS)
    assert fakes.fal.submissions == []


async def test_a_bad_fal_key_fails_with_the_reason(fakes: Fakes) -> None:
    code, out = await fakes.check(fal_key="not-the-key-at-all")
    assert code == 1
    assert "fal refused FAL_KEY (HTTP 401)" in out
    assert "not-the-key-at-all" not in out
    # One refused probe is enough: the other endpoints are not asked.
    assert fakes.fal.counts["submit"] == 1


async def test_a_removed_endpoint_is_reported(fakes: Fakes) -> None:
    gone = "fal-ai/pika/v2.2/pikascenes"
    fakes.fal.remove_endpoint(gone)
    code, out = await fakes.check()
    assert code == 1
    assert f"{gone}: fal does not know this endpoint (404)" in out
    assert f"fal key: accepted ({len(ENDPOINTS) - 1} of {len(ENDPOINTS)} endpoints answer)" in out
    assert f"  - {gone}:" in out


async def test_an_unreachable_fal_fails(fakes: Fakes) -> None:
    code, out = await fakes.check(
        fal_queue_url="http://127.0.0.1:9", fal_rest_url="http://127.0.0.1:9"
    )
    assert code == 1
    assert "fal could not be reached at http://127.0.0.1:9" in out


async def test_a_missing_permission_in_a_server_is_reported(fakes: Fakes) -> None:
    fake = fakes.discord
    await fake.set_role_permissions(fake.bot_role, BOT_ROLE_DEFAULT & ~ATTACH_FILES)
    await fake.set_role_permissions(fake.guild.everyone, EVERYONE_DEFAULT & ~ATTACH_FILES)
    code, out = await fakes.check()
    assert code == 1
    assert f"server Test Server ({fake.guild.id}) lacks Attach Files:" in out
    assert "Embed Links" not in out.split("lacks", 1)[1].splitlines()[0]


async def test_an_administrator_lacks_nothing(fakes: Fakes) -> None:
    fake = fakes.discord
    await fake.set_role_permissions(fake.bot_role, discord.Permissions(administrator=True).value)
    await fake.set_role_permissions(fake.guild.everyone, 0)
    code, out = await fakes.check()
    assert code == 0, out


async def test_a_refused_discord_token_fails(fakes: Fakes) -> None:
    code, out = await fakes.check(discord_token="someone-elses-token-value")
    assert code == 1
    assert "Discord refused DISCORD_TOKEN (401)" in out
    assert "someone-elses-token-value" not in out


async def test_missing_secrets_fail_each_by_name(fakes: Fakes) -> None:
    code, out = await fakes.check(discord_token=None, fal_key=None)
    assert code == 1
    assert "FAL_KEY is not set in the environment" in out
    assert "DISCORD_TOKEN is not set in the environment" in out


async def test_offline_skips_the_network(tmp_path: Path) -> None:
    settings = load_settings(
        discord_token=DISCORD_TOKEN,
        fal_key=FAL_KEY,
        database=tmp_path / "db.sqlite3",
        fal_queue_url="http://127.0.0.1:9",
        discord_api_url="http://127.0.0.1:9/api/v10",
    )
    out = io.StringIO()
    assert await run_check(settings, offline=True, out=out) == 0
    assert "skipped (--offline)" in out.getvalue()


async def test_an_unusable_database_fails(tmp_path: Path) -> None:
    not_a_db = tmp_path / "db.sqlite3"
    not_a_db.write_bytes(b"this is not a database file, just text" * 100)
    settings = load_settings(discord_token=DISCORD_TOKEN, fal_key=FAL_KEY, database=not_a_db)
    out = io.StringIO()
    assert await run_check(settings, offline=True, out=out) == 1
    assert "the database cannot be opened" in out.getvalue()


def test_the_invite_asks_for_exactly_the_needed_permissions() -> None:
    # The bits as Discord's documentation numbers them (the fake's own table, not discord.py's).
    needed = (
        VIEW_CHANNEL
        | SEND_MESSAGES
        | SEND_MESSAGES_IN_THREADS
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
    )
    assert bot_permissions().value == needed == INVITE_PERMISSIONS
    assert all(getattr(bot_permissions(), attr) for attr, _ in BOT_PERMISSIONS)
    url = invite_url(1234)
    assert "client_id=1234" in url
    assert "scope=bot+applications.commands" in url
    assert f"permissions={INVITE_PERMISSIONS}" in url


def test_the_client_id_is_read_from_a_bot_token() -> None:
    assert client_id_from_token("MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.xyz") == 123456789012345678
    assert client_id_from_token("not a token") is None


@pytest.fixture
def root_logger() -> Iterator[None]:
    """The CLI installs its log handler on the root logger: take it away afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logger")
def test_the_cli_runs_check_and_invite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.xyz")
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    monkeypatch.setenv("PIKABOT_DATABASE", str(tmp_path / "db.sqlite3"))
    assert main(["check", "--offline"]) == 0
    assert main(["invite"]) == 0
    printed = capsys.readouterr().out
    assert "check: everything is ready" in printed
    assert (
        f"client_id=123456789012345678&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
        in printed
    )
