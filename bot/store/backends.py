"""Which backend a database setting names, an SQLite file or a PostgreSQL URL, and opening it.

`PIKABOT_DATABASE` is a file path or `sqlite:///path` (SQLite through aiosqlite, the embedded
default) or a `postgresql://` URL (PostgreSQL through an asyncpg pool). The password of a URL,
or PGPASSWORD when the URL has none, reaches asyncpg and nothing else: a URL is held as a
secret and shown only without its password.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import SecretStr

from bot.store.api import StoreBackend
from bot.store.db import Clock

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# As SQLAlchemy writes them: sqlite:///data/bot.sqlite3 is relative, sqlite:////srv/bot.sqlite3
# absolute, sqlite:///:memory: a private in-memory database.
SQLITE_SCHEME = "sqlite:///"
DEFAULT_POOL_SIZE = 10


class PostgresUrl(SecretStr):
    """A `postgresql://` URL. It prints as a secret would; `for_logs` is the URL without its
    password, for `check` and the logs."""

    @property
    def for_logs(self) -> str:
        # asyncpg (imported with it) is needed only by a PostgreSQL bot.
        from bot.store.postgres.db import dsn_without_password

        return dsn_without_password(self.get_secret_value())

    @property
    def password(self) -> str | None:
        """The password in the URL, if any, for the logs to redact."""
        return urlsplit(self.get_secret_value()).password


def database_location(value: str | Path) -> Path | PostgresUrl:
    """What a `PIKABOT_DATABASE` value names: an SQLite file or a PostgreSQL URL.

    Raises ValueError for a URL of any other kind (a typo'd scheme must not become a file).
    """
    if isinstance(value, Path):
        return value
    text = value.strip()
    if text.startswith(POSTGRES_SCHEMES):
        return PostgresUrl(text)
    if text.startswith(SQLITE_SCHEME):
        path = text.removeprefix(SQLITE_SCHEME)
        if not path:
            raise ValueError("sqlite:/// needs a path after it, e.g. sqlite:///data/bot.sqlite3")
        return Path(path)
    if "://" in text or text.startswith("sqlite:"):
        raise ValueError(
            "must be a file path, sqlite:///path or a postgresql:// URL "
            "(postgresql://user@host:5432/database)"
        )
    return Path(text)


def backend_name(location: Path | PostgresUrl) -> str:
    """Which backend it is, as `check` reports it: "sqlite" or "postgresql"."""
    return "postgresql" if isinstance(location, PostgresUrl) else "sqlite"


def shown(location: Path | PostgresUrl) -> str:
    """The location as an operator may read it: the path, or the URL without its password."""
    return location.for_logs if isinstance(location, PostgresUrl) else str(location)


class DatabaseSettings(Protocol):
    """What `open_store` reads of the bot's settings (bot.config.Settings has both)."""

    @property
    def database(self) -> Path | PostgresUrl: ...
    @property
    def database_pool_size(self) -> int: ...


async def open_store(
    where: DatabaseSettings | str | Path | PostgresUrl,
    *,
    clock: Clock = time.time,
    pool_size: int = DEFAULT_POOL_SIZE,
) -> StoreBackend:
    """Open the store the settings (or a path or URL) name, applying pending migrations: the
    SQLite `Store` for a path (or ":memory:"), the PostgreSQL `PgStore` on a pool of up to
    `pool_size` connections (the settings' own when given settings) for a URL. Close it with
    `async with` as either."""
    if isinstance(where, str | Path | PostgresUrl):
        location = database_location(where) if isinstance(where, str | Path) else where
    else:
        location, pool_size = where.database, where.database_pool_size
    if isinstance(location, PostgresUrl):
        # Imported here: a SQLite bot never loads asyncpg.
        from bot.store.postgres.store import PgStore

        return await PgStore.open(location.get_secret_value(), clock=clock, max_size=pool_size)
    from bot.store.store import Store

    return await Store.open(location, clock=clock)
