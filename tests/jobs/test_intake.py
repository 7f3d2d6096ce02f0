"""The intake's bounds: how many commands read files at once, and each member's count."""

from __future__ import annotations

import asyncio

import httpx

from bot.jobs.intake import Intake, cdn_rules


async def test_at_most_the_configured_number_of_commands_read_files_at_once() -> None:
    async with httpx.AsyncClient() as http:
        intake = Intake(http=http, concurrency=2, cdn_hosts=())
        inside = most = 0
        two_in = asyncio.Event()
        release = asyncio.Event()

        async def command() -> None:
            nonlocal inside, most
            async with intake.slot():
                inside += 1
                most = max(most, inside)
                if inside == 2:
                    two_in.set()
                await release.wait()
                inside -= 1

        tasks = [asyncio.create_task(command()) for _ in range(6)]
        await two_in.wait()
        release.set()
        await asyncio.gather(*tasks)
        assert most == 2


async def test_a_members_commands_in_intake_are_counted_until_each_ends() -> None:
    async with httpx.AsyncClient() as http:
        intake = Intake(http=http, concurrency=1, cdn_hosts=())
        with intake.holding(7) as before_first:
            with intake.holding(7) as before_second:
                assert (before_first, before_second) == (0, 1)
                assert intake.pending(7) == 2
                assert intake.pending(8) == 0
            assert intake.pending(7) == 1
        assert intake.pending(7) == 0


def test_the_cdn_hosts_add_a_local_discord_and_only_then_allow_http() -> None:
    hosts = ["cdn.discordapp.com"]
    assert cdn_rules(hosts, "https://discord.com/api/v10") == (
        frozenset({"cdn.discordapp.com"}),
        True,
    )
    assert cdn_rules(hosts, "http://127.0.0.1:5000/api/v10") == (
        frozenset({"cdn.discordapp.com", "127.0.0.1"}),
        False,
    )
