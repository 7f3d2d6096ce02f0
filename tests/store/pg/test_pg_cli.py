"""The command line on PostgreSQL: `PIKABOT_DATABASE=postgresql://…` reaches the PgStore through
open_store, and `check` and `forget` run on it without ever printing the URL's password."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.__main__ import main
from bot.config import load_settings
from bot.store import open_store
from bot.store.postgres.store import PgStore
from tests.secrets import CHECK

PASSWORD = "pg-password-aHVudGVyMi1zZWNyZXQ"


def with_password(dsn: str) -> str:
    # The tests' own server trusts its logins, so any password is accepted and none is needed.
    parts = urlsplit(dsn)
    netloc = f"{parts.username}:{PASSWORD}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def root_logger() -> Iterator[None]:
    """The CLI installs its log handler on the root logger: take it away afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_open_store_opens_postgresql_for_a_url(pg_dsn: str) -> None:
    settings = load_settings(database=with_password(pg_dsn), database_pool_size=3)
    async with await open_store(settings) as store:
        assert isinstance(store, PgStore)
        assert store.path == pg_dsn  # shown without its password
        assert await store.meta.schema_version() > 0


@pytest.mark.usefixtures("root_logger")
def test_check_and_forget_run_on_postgresql_and_never_show_the_password(
    pg_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", CHECK.discord_token)
    monkeypatch.setenv("FAL_KEY", CHECK.fal_key)
    monkeypatch.setenv("PIKABOT_DATABASE", with_password(pg_dsn))
    caplog.set_level(logging.DEBUG)
    assert main(["check", "--offline"]) == 0
    assert main(["forget", "--guild", "1", "--user", "100"]) == 0
    out, err = capsys.readouterr()
    assert f"database: postgresql {pg_dsn} (PostgreSQL " in out
    assert "migrations current" in out
    assert PASSWORD not in out + err + caplog.text
