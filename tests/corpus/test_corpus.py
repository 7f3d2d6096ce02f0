"""The bad-input corpus (issue 6 item 3) through the real bot: every case gets a clear ephemeral
answer, costs nothing and sends nothing to fal, or runs with its text cleaned; the bot stays
healthy after each group."""

from __future__ import annotations

import logging
import unicodedata

import discord
import pytest

from bot.pika import InvalidRequest, Mode, check_options
from bot.sandbox.fakediscord import CommandMismatch
from bot.sandbox.fakediscord.records import StoredMessage
from tests.corpus.cases import CASES, Case, DiscordRefusal, Refusal, RunsCleaned
from tests.e2e.conftest import World, embed_text, job_id_of

pytestmark = pytest.mark.world(
    daily_allowance=100_000, guild_daily_budget=1_000_000, global_daily_budget=1_000_000
)

# Kept out of every message the bot writes: what clean_text removes.
BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def removed_characters(text: str) -> set[str]:
    """Control characters (other than newline and tab) and bidi controls in `text`."""
    return {
        ch for ch in text if ch in BIDI or (unicodedata.category(ch) == "Cc" and ch not in "\n\t")
    }


def of_kind(kind: type) -> list[Case]:
    return [case for case in CASES if isinstance(case.expect, kind)]


def refusals(*, before_defer: bool) -> list[Case]:
    return [
        case
        for case in CASES
        if isinstance(case.expect, Refusal) and case.expect.before_defer is before_defer
    ]


def test_the_corpus_has_at_least_40_distinct_cases() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    # Every kind of outcome is represented, and both refusal stages.
    assert refusals(before_defer=True)
    assert refusals(before_defer=False)
    assert of_kind(DiscordRefusal)
    assert of_kind(RunsCleaned)


async def nothing_happened(world: World, case: Case) -> None:
    """No fal request, no job, no reservation or charge."""
    assert sum(world.fal.counts.values()) == 0, (case.id, dict(world.fal.counts))
    assert world.fal.submissions == [], case.id
    assert await world.jobs() == [], case.id
    assert await world.ledger() == [], case.id


async def healthy(world: World) -> StoredMessage:
    """A normal job still runs to a delivered video; returns its post."""
    before = len(world.posts())
    await world.command("pika text", {"prompt": "a lighthouse at night"})
    post = await world.wait_for(
        lambda: world.posts()[before] if len(world.posts()) > before else None
    )
    job = await world.job(job_id_of(post))
    assert job.state == "delivered", job
    assert post.attachments
    return post


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or (r.exc_info and r.name.startswith(("bot", "cogs")))
    ]
    assert bad == []


async def check_refusals(world: World, before_defer: bool) -> None:
    cases = refusals(before_defer=before_defer)
    assert len(cases) >= 10
    for case in cases:
        expect = case.expect
        assert isinstance(expect, Refusal)
        options = case.options(world)
        interaction = await world.command(case.command, options)
        refused = await world.refusal(interaction)
        for words in expect.says:
            assert words in refused.text, f"{case.id}: {refused.text!r} lacks {words!r}"
        assert refused.before_defer is before_defer, (case.id, refused)
        if before_defer:
            files = [v for v in options.values() if isinstance(v, dict)]
            assert all(world.fake.downloads(f) == 0 for f in files), case.id
        await nothing_happened(world, case)
    assert world.posts() == []
    assert all(m.ephemeral or m.deleted for m in world.bot_messages())


async def test_refusals_from_options_and_declared_files(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    await check_refusals(world, before_defer=True)
    await healthy(world)
    no_errors_logged(caplog)


async def test_refusals_from_the_files_bytes(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    await check_refusals(world, before_defer=False)
    await healthy(world)
    no_errors_logged(caplog)


async def test_what_discord_refuses_the_bot_refuses_too(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    cases = of_kind(DiscordRefusal)
    for case in cases:
        expect = case.expect
        assert isinstance(expect, DiscordRefusal)
        options = case.options(world)
        with pytest.raises(CommandMismatch):
            await world.command(case.command, options)
        assert not world.fake.interactions, case.id
        # Had it arrived anyway (a modified client, a Discord bug), the cog's first check
        # refuses it with a message a member can act on; files are stood in for, as there.
        mode = Mode(case.command.removeprefix("pika "))
        with pytest.raises(InvalidRequest) as refused:
            check_options(mode, **options)
        for words in expect.says:
            assert words in refused.value.message, f"{case.id}: {refused.value.message!r}"
        await nothing_happened(world, case)
    await healthy(world)
    no_errors_logged(caplog)


async def test_text_is_cleaned_and_mentions_and_markdown_stay_harmless(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    member = world.fake.member.id
    for number, case in enumerate(of_kind(RunsCleaned), start=1):
        expect = case.expect
        assert isinstance(expect, RunsCleaned)
        options = case.options(world)
        before = len(world.posts())
        interaction = await world.command(case.command, options)
        post = await world.wait_for(
            lambda: world.posts()[before] if len(world.posts()) > before else None  # noqa: B023
        )
        job = await world.job(job_id_of(post))
        assert job.state == "delivered", (case.id, job)
        submission = await world.submission(number)
        for field, value in expect.fal.items():
            assert submission.body.get(field) == value, (case.id, field, submission.body)
        prompt = str(submission.body.get("prompt", ""))
        assert not removed_characters(prompt), case.id

        shown = [m for m in world.bot_messages() if m is post or m is interaction.original]
        assert len(shown) == 2, case.id
        for message in shown:
            versions = [message.content, embed_text(message)]
            versions += [v.content + str(v.embeds) for v in message.history]
            assert not removed_characters("".join(versions)), (case.id, versions)
            # Whatever the prompt says, the bot pings the requester at most.
            assert message.pings.users <= {member}, (case.id, message.pings)
            assert not message.pings.roles, case.id
            assert not message.pings.everyone, case.id
        assert post.pings.users == {member}
        # The prompt is shown with its markdown escaped, so it reads as the member typed it.
        assert discord.utils.escape_markdown(prompt) in embed_text(post), case.id
    await healthy(world)
    no_errors_logged(caplog)
