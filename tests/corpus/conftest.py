"""The corpus runs through the end-to-end world of tests/e2e (one real bot per test)."""

from tests.e2e.conftest import pytest_configure, world

__all__ = ["pytest_configure", "world"]
