"""The soak test runs in the e2e world (the real bot against the fake Discord and fal emulator)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import postgres_server, world

__all__ = ["postgres_server", "world"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: the long fault-injection run (in CI too; deselect with -m 'not soak')"
    )
    config.addinivalue_line(
        "markers", "world(**settings): settings the e2e world's bot starts with (PIKABOT_ names)"
    )
