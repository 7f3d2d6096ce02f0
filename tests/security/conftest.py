"""Security tests that need the whole bot use the end-to-end world of tests/e2e."""

from tests.e2e.conftest import pytest_configure, world

__all__ = ["pytest_configure", "world"]
