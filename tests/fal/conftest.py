"""Fixtures for the fal client tests: a running emulator and a client whose waits are recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from bot.emulator import FalEmulator
from bot.fal import FalClient, data_uri

from .fal_support import KEY, RETRY, TIMEOUTS, RecordingSleep, png_bytes


@pytest.fixture
async def emu() -> AsyncIterator[FalEmulator]:
    async with FalEmulator(key=KEY) as emulator:
        yield emulator


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def make_client(emu: FalEmulator, sleeps: RecordingSleep) -> Callable[..., FalClient]:
    """Build a client against the emulator; keyword arguments override the test defaults."""

    def build(**overrides: object) -> FalClient:
        options: dict[str, object] = {
            "timeouts": TIMEOUTS,
            "retry": RETRY,
            "sleep": sleeps,
            "random_fraction": lambda: 1.0,
        }
        options.update(overrides)
        key = options.pop("key", KEY)
        return FalClient(emu.base_url, emu.base_url, key, **options)  # type: ignore[arg-type]

    return build


@pytest.fixture
async def fal(make_client: Callable[..., FalClient]) -> AsyncIterator[FalClient]:
    async with make_client() as client:
        yield client


@pytest.fixture
def png_uri() -> str:
    return data_uri(png_bytes(), "image/png")
