"""The PostgreSQL tests' server and databases (tests/postgres.py), and CI's no-skip rule."""

from tests.postgres import pg, pg_dsn, postgres_server, pytest_runtest_makereport

__all__ = ["pg", "pg_dsn", "postgres_server", "pytest_runtest_makereport"]
