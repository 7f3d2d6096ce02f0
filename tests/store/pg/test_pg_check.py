"""`check` on a real PostgreSQL: the backend, the server's version, migrations current."""

from __future__ import annotations

import io
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bot.config import load_settings
from bot.ops.check import Report, check_database
from bot.store.postgres.schema import bundled_migrations


async def test_postgresql_is_reported_with_the_servers_version_and_current_migrations(
    pg: asyncpg.Connection, pg_dsn: str
) -> None:
    server = await pg.fetchval("SHOW server_version")
    out = io.StringIO()
    assert await check_database(load_settings(database=pg_dsn), Report(out))
    newest = bundled_migrations()[-1].version
    assert out.getvalue().strip() == (
        f"database: postgresql {pg_dsn} (PostgreSQL {server}, schema version {newest}, "
        "migrations current)"
    )


async def test_a_refused_login_fails_and_the_password_stays_hidden(pg_dsn: str) -> None:
    parts = urlsplit(pg_dsn)
    # A role the server does not have is refused, whatever its authentication method.
    login = f"pika_nobody:wrong-password@{parts.hostname}:{parts.port}"
    out = io.StringIO()
    report = Report(out)
    settings = load_settings(database=urlunsplit(parts._replace(netloc=login)))
    assert not await check_database(settings, report)
    assert "the database cannot be opened" in out.getvalue()
    assert "wrong-password" not in out.getvalue() + "".join(report.failures)
