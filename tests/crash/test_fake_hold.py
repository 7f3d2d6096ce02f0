"""The fake Discord's hold: a request kept waiting before or after Discord acts on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.sandbox.fakediscord import FakeDiscord
from tests.secrets import HOLD_TOKEN

TOKEN = HOLD_TOKEN


async def send(fake: FakeDiscord, content: str) -> httpx.Response:
    async with httpx.AsyncClient(headers={"Authorization": f"Bot {TOKEN}"}) as client:
        return await client.post(
            f"{fake.api_url}/channels/{fake.channel.id}/messages", json={"content": content}
        )


def contents(fake: FakeDiscord) -> list[str]:
    return [m.content for m in fake.messages(fake.channel)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN) as fake:
        yield fake


async def test_a_request_held_before_and_dropped_never_happens(fake: FakeDiscord) -> None:
    held = fake.hold_next("POST", "/channels/*/messages", before=True)
    sending = asyncio.create_task(send(fake, "never"))
    assert await held.wait() == f"/channels/{fake.channel.id}/messages"
    assert contents(fake) == []
    held.drop()
    with pytest.raises(httpx.TransportError):
        await sending
    assert contents(fake) == []


async def test_a_request_held_after_and_dropped_happened_unanswered(fake: FakeDiscord) -> None:
    held = fake.hold_next("POST", "/channels/*/messages", before=False)
    sending = asyncio.create_task(send(fake, "made"))
    await held.wait()
    assert contents(fake) == ["made"]
    held.drop()
    with pytest.raises(httpx.TransportError):
        await sending
    assert contents(fake) == ["made"]


async def test_a_released_request_is_answered_and_only_the_next_one_is_held(
    fake: FakeDiscord,
) -> None:
    held = fake.hold_next("POST", "/channels/*/messages", before=True)
    sending = asyncio.create_task(send(fake, "first"))
    await held.wait()
    held.release()
    assert (await sending).status_code == 200
    assert (await send(fake, "second")).status_code == 200
    assert contents(fake) == ["first", "second"]
