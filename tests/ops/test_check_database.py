"""`check`'s database line: which backend, its version, and whether its migrations are current."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

from bot.config import load_settings
from bot.ops.check import Report, check_database
from bot.store import bundled_migrations


async def test_sqlite_is_reported_with_its_version_and_current_migrations(tmp_path: Path) -> None:
    settings = load_settings(database=f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    out = io.StringIO()
    assert await check_database(settings, Report(out))
    newest = bundled_migrations()[-1].version
    assert out.getvalue().strip() == (
        f"database: sqlite {tmp_path / 'bot.sqlite3'} (SQLite {sqlite3.sqlite_version}, "
        f"schema version {newest}, migrations current)"
    )


async def test_an_unreachable_postgresql_fails_without_showing_its_password() -> None:
    # Port 9 on loopback: nothing listens there, so the connection is refused at once.
    settings = load_settings(database="postgresql://pika:hunter2-secret@127.0.0.1:9/pika")
    out = io.StringIO()
    report = Report(out)
    assert not await check_database(settings, report)
    text = out.getvalue()
    assert text.startswith("database: postgresql postgresql://pika@127.0.0.1:9/pika\n")
    assert "the database cannot be opened" in text
    assert "hunter2-secret" not in text + "".join(report.failures)
