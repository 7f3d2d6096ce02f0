"""Which backend PIKABOT_DATABASE names: a file, sqlite:///path or a postgresql:// URL whose
password never shows; `open_store` opens the SQLite store for a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from bot.store import PostgresUrl, Store, database_location, open_store


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PIKABOT_") or name in {"DISCORD_TOKEN", "FAL_KEY", "PGPASSWORD"}:
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("data/pikabot.sqlite3", Path("data/pikabot.sqlite3")),
        ("/srv/pika/bot.sqlite3", Path("/srv/pika/bot.sqlite3")),
        ("sqlite:///data/bot.sqlite3", Path("data/bot.sqlite3")),
        ("sqlite:////srv/pika/bot.sqlite3", Path("/srv/pika/bot.sqlite3")),
        ("sqlite:///:memory:", Path(":memory:")),
    ],
)
def test_a_path_or_sqlite_url_names_an_sqlite_file(value: str, path: Path) -> None:
    assert database_location(value) == path


@pytest.mark.parametrize("value", ["postgresql://pika@db:5432/pika", "postgres://pika@db/pika"])
def test_a_postgresql_url_names_postgresql(value: str) -> None:
    location = database_location(value)
    assert isinstance(location, PostgresUrl)
    assert location.get_secret_value() == value


@pytest.mark.parametrize("value", ["mysql://pika@db/pika", "sqlite://bot.sqlite3", "sqlite:///"])
def test_another_kind_of_url_is_refused_not_taken_for_a_file(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PIKABOT_DATABASE", value)
    with pytest.raises(ConfigError, match="PIKABOT_DATABASE"):
        load_settings()


def test_the_urls_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIKABOT_DATABASE", "postgresql://pika:hunter2-secret@db:5432/pika")
    settings = load_settings()
    assert isinstance(settings.database, PostgresUrl)
    shown = repr(settings) + str(settings) + settings.model_dump_json() + str(settings.database)
    assert "hunter2-secret" not in shown
    assert settings.database.for_logs == "postgresql://pika@db:5432/pika"
    assert settings.database.password == "hunter2-secret"


def test_a_password_in_the_query_is_left_out_of_the_shown_url() -> None:
    url = PostgresUrl("postgresql://pika@db/pika?sslmode=require&password=hunter2-secret")
    assert url.for_logs == "postgresql://pika@db/pika?sslmode=require"


def test_the_pool_size_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().database_pool_size == 10
    monkeypatch.setenv("PIKABOT_DATABASE_POOL_SIZE", "25")
    assert load_settings().database_pool_size == 25
    monkeypatch.setenv("PIKABOT_DATABASE_POOL_SIZE", "0")
    with pytest.raises(ConfigError, match="PIKABOT_DATABASE_POOL_SIZE"):
        load_settings()


async def test_open_store_opens_sqlite_for_a_path(tmp_path: Path) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    async with await open_store(f"sqlite:///{path}") as store:
        assert isinstance(store, Store)
        assert store.path == str(path)
        assert await store.meta.schema_version() > 0


async def test_open_store_opens_the_database_the_settings_name(tmp_path: Path) -> None:
    settings = load_settings(database=tmp_path / "bot.sqlite3")
    async with await open_store(settings) as store:
        assert isinstance(store, Store)
        assert store.path == str(tmp_path / "bot.sqlite3")
