"""The PostgreSQL store: the same table groups as SQLite's on an asyncpg pool, its numbered
migrations, and the row locks that keep reservations from several processes within every limit."""

from bot.store.postgres.db import PgDatabase
from bot.store.postgres.store import PgStore

__all__ = ["PgDatabase", "PgStore"]
