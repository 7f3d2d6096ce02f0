"""Security tests that need the whole bot use the end-to-end world of tests/e2e."""

from tests.e2e.conftest import postgres_server, pytest_configure, world

__all__ = ["postgres_server", "pytest_configure", "world"]
