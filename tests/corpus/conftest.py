"""The corpus runs through the end-to-end world of tests/e2e (one real bot per test)."""

from tests.e2e.conftest import postgres_server, pytest_configure, world

__all__ = ["postgres_server", "pytest_configure", "world"]
