"""SIGKILL the bot at every point of a job's life, start it again, and check that each job was
sent to fal once, delivered once, charged or refunded once, and that the member was told."""

from __future__ import annotations

import discord

from bot.emulator import Fault, JobScript
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from bot.store import Job, JobState, LedgerKind
from tests.crash.conftest import Crash

RESERVED = [LedgerKind.RESERVE]
SETTLED = [LedgerKind.RESERVE, LedgerKind.SETTLE]
REFUNDED = [LedgerKind.RESERVE, LedgerKind.REFUND]


def text_of(message: StoredMessage) -> str:
    """What a member reads in a message: its content and its embeds."""
    parts = [message.content]
    for embed in message.embeds:
        parts += [str(embed.get("title", "")), str(embed.get("description", ""))]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


def footer_id(message: StoredMessage) -> str:
    return str(message.embeds[0]["footer"]["text"]).removeprefix("job ")


async def first_reply(crash: Crash, interaction: FakeInteraction) -> str:
    """Wait for the command's progress reply; the job id it names."""
    reply = await crash.fake.wait_for(
        lambda: (
            interaction.original if interaction.original and interaction.original.embeds else None
        )
    )
    assert reply is not None
    return footer_id(reply)


async def kinds(crash: Crash, job_id: str) -> list[LedgerKind]:
    return [entry.kind for entry in await crash.ledger(job_id)]


async def finish(crash: Crash, job_id: str, how: str = "delivered") -> Job:
    """Wait until the restarted bot logs the job's end, stop it cleanly, and return the job."""
    assert crash.bot is not None
    await crash.bot.line(f"job {job_id} {how}")
    await crash.stop()
    return await crash.job(job_id)


async def assert_delivered_once(crash: Crash, job_id: str, prompt: str) -> StoredMessage:
    """One submit, one post with the video that pings the member, one settle."""
    job = await crash.job(job_id)
    assert job.state is JobState.DELIVERED, job.state
    assert crash.submits_for(prompt) == 1
    [post] = crash.deliveries(job_id)
    assert job.result_message_id == post.id
    assert f"<@{crash.fake.member.id}>" in post.content or job.delivery_path == "dm"
    assert await kinds(crash, job_id) == SETTLED
    return post


async def assert_progress_says_done(crash: Crash, interaction: FakeInteraction) -> None:
    """The member's progress reply no longer says the job is on its way."""
    reply = interaction.original
    assert reply is not None
    assert not reply.loading, "the member was left with 'the bot is thinking'"
    assert "Done" in text_of(reply), text_of(reply)


async def test_killed_after_the_reservation_before_the_first_reply(crash: Crash) -> None:
    await crash.start()
    held = crash.fake.hold_next("PATCH", "/webhooks/*/*/messages/@original", before=True)
    interaction = await crash.command("pika text", {"prompt": "after the reservation"})
    await held.wait()
    await crash.kill()
    held.drop()
    job = await crash.only_job()
    assert job.state is JobState.QUEUED
    assert await kinds(crash, job.id) == RESERVED
    assert crash.fal.submissions == []

    await crash.start()
    await finish(crash, job.id)
    await assert_delivered_once(crash, job.id, "after the reservation")
    await assert_progress_says_done(crash, interaction)


async def test_killed_while_waiting_in_the_bots_queue(crash: Crash) -> None:
    crash.env["PIKABOT_FAL_CONCURRENCY"] = "1"
    crash.fal.script_next(JobScript(hold_in_queue=True))
    await crash.start()
    first = await crash.command("pika text", {"prompt": "holds the only slot"})
    first_id = await first_reply(crash, first)
    [at_fal] = await crash.watched.until(lambda: crash.fal.submissions)
    second = await crash.command("pika text", {"prompt": "waits its turn"})
    second_id = await first_reply(crash, second)
    await crash.kill()
    assert (await crash.job(second_id)).state is JobState.QUEUED
    assert await kinds(crash, second_id) == RESERVED
    assert len(crash.fal.submissions) == 1

    await crash.start()
    await crash.fal.advance(at_fal.request_id)
    assert crash.bot is not None
    await crash.bot.line(f"job {first_id} delivered")
    await finish(crash, second_id)
    await assert_delivered_once(crash, first_id, "holds the only slot")
    await assert_delivered_once(crash, second_id, "waits its turn")
    await assert_progress_says_done(crash, second)


async def test_killed_right_after_submit_ends_unknown_refunded_and_explained(crash: Crash) -> None:
    # fal accepts the job, but its answer never reaches the bot before the kill.
    crash.fal.inject(Fault(kind="submit", after_accept=True, delay=60))
    await crash.start()
    interaction = await crash.command("pika text", {"prompt": "lost answer"})
    job_id = await first_reply(crash, interaction)
    await crash.watched.until(lambda: crash.fal.submissions)
    await crash.kill()
    assert (await crash.job(job_id)).state is JobState.SUBMITTING

    await crash.start()
    # The refund comes first, then the member is told: the note is the last thing to wait for.
    note = await crash.fake.wait_for(
        lambda: next(
            (
                m
                for m in crash.bot_messages()
                if f"<@{crash.fake.member.id}>" in m.content and job_id in m.content
            ),
            None,
        )
    )
    assert note is not None
    await crash.stop()
    job = await crash.job(job_id)
    assert job.state is JobState.UNKNOWN
    assert job.error_code == "submission_unknown"
    assert crash.submits_for("lost answer") == 1, "the job must never be sent twice"
    # Refunded to the member, written off against the budgets: fal may have run and billed it.
    assert await kinds(crash, job_id) == [LedgerKind.RESERVE, LedgerKind.WRITE_OFF]
    assert crash.deliveries(job_id) == []
    assert "restarted while sending" in note.content
    assert "not charged" in note.content
    assert note.ephemeral
    assert interaction.original is not None
    assert "restarted while sending" in text_of(interaction.original)
    assert crash.bot is not None
    assert any("WARNING" in line and "fal may have run" in line for line in crash.bot.lines)


async def test_killed_while_waiting_in_fals_queue(crash: Crash) -> None:
    crash.fal.script_next(JobScript(hold_in_queue=True))
    await crash.start()
    interaction = await crash.command("pika text", {"prompt": "in fal's queue"})
    job_id = await first_reply(crash, interaction)
    [submission] = await crash.watched.until(lambda: crash.fal.submissions)
    # The bot watches only once the request id is stored.
    await crash.watched.until(lambda: crash.fal.counts["stream"] + crash.fal.counts["status"])
    await crash.kill()
    job = await crash.job(job_id)
    assert job.state is JobState.SUBMITTED
    assert job.fal_request_id == submission.request_id

    await crash.start()
    await crash.fal.advance(submission.request_id)
    await finish(crash, job_id)
    await assert_delivered_once(crash, job_id, "in fal's queue")
    await assert_progress_says_done(crash, interaction)


async def test_killed_while_generating(crash: Crash) -> None:
    crash.fal.script_next(JobScript(hold_in_progress=True))
    await crash.start()
    interaction = await crash.command("pika text", {"prompt": "generating"})
    job_id = await first_reply(crash, interaction)
    await crash.fake.wait_for(
        lambda: interaction.original is not None and "Generating" in text_of(interaction.original)
    )
    await crash.kill()
    job = await crash.job(job_id)
    assert job.state is JobState.RUNNING
    assert job.fal_request_id is not None

    await crash.start()
    await crash.fal.advance(job.fal_request_id)
    await finish(crash, job_id)
    await assert_delivered_once(crash, job_id, "generating")
    await assert_progress_says_done(crash, interaction)


async def test_killed_after_completed_before_the_download(crash: Crash) -> None:
    crash.fal.inject(Fault(kind="file", delay=60))
    await crash.start()
    interaction = await crash.command("pika text", {"prompt": "not downloaded yet"})
    job_id = await first_reply(crash, interaction)
    await crash.watched.until(lambda: crash.fal.counts["file"])
    await crash.kill()
    assert (await crash.job(job_id)).state is JobState.COMPLETED

    await crash.start()
    await finish(crash, job_id)
    await assert_delivered_once(crash, job_id, "not downloaded yet")
    await assert_progress_says_done(crash, interaction)


async def test_killed_after_the_download_before_posting(crash: Crash) -> None:
    await crash.start()
    held = crash.fake.hold_next("POST", "/channels/*/messages", before=True)
    interaction = await crash.command("pika text", {"prompt": "downloaded"})
    job_id = await first_reply(crash, interaction)
    await held.wait()
    await crash.kill()
    held.drop()
    job = await crash.job(job_id)
    assert job.state is JobState.DOWNLOADED
    assert crash.deliveries(job_id) == []
    assert await kinds(crash, job_id) == RESERVED

    await crash.start()
    await finish(crash, job_id)
    await assert_delivered_once(crash, job_id, "downloaded")
    await assert_progress_says_done(crash, interaction)


async def test_killed_after_posting_before_settling(crash: Crash) -> None:
    await crash.start()
    held = crash.fake.hold_next("POST", "/channels/*/messages", before=False)
    interaction = await crash.command("pika text", {"prompt": "posted"})
    job_id = await first_reply(crash, interaction)
    await held.wait()
    await crash.kill()
    held.drop()
    job = await crash.job(job_id)
    assert job.state is JobState.DOWNLOADED
    assert len(crash.deliveries(job_id)) == 1, "the post was made before the kill"
    assert await kinds(crash, job_id) == RESERVED

    await crash.start()
    await finish(crash, job_id)
    post = await assert_delivered_once(crash, job_id, "posted")
    assert post.attachments
    assert (await crash.job(job_id)).delivery_path == "channel"
    await assert_progress_says_done(crash, interaction)


async def test_killed_after_posting_a_link_before_settling(crash: Crash) -> None:
    crash.fake.set_attachment_size_limit(1024)  # no video fits: it goes out as a link
    await crash.start()
    held = crash.fake.hold_next("POST", "/channels/*/messages", before=False)
    interaction = await crash.command("pika text", {"prompt": "posted as a link"})
    job_id = await first_reply(crash, interaction)
    await held.wait()
    await crash.kill()
    held.drop()
    assert (await crash.job(job_id)).state is JobState.DOWNLOADED
    assert len(crash.deliveries(job_id)) == 1

    await crash.start()
    await finish(crash, job_id)
    post = await assert_delivered_once(crash, job_id, "posted as a link")
    assert not post.attachments
    assert (await crash.job(job_id)).delivery_path == "link"
    await assert_progress_says_done(crash, interaction)


async def test_killed_after_sending_a_dm_before_settling(crash: Crash) -> None:
    await crash.fake.set_bot_permissions(
        crash.fake.channel, deny=discord.Permissions(attach_files=True).value
    )
    await crash.start()
    held = crash.fake.hold_next("POST", "/channels/*/messages", before=False)
    interaction = await crash.command("pika text", {"prompt": "sent by dm"})
    job_id = await first_reply(crash, interaction)
    path = await held.wait()
    dm = crash.fake.world.dm_channel(crash.fake.member.id)
    assert path == f"/channels/{dm.id}/messages"
    await crash.kill()
    held.drop()
    assert (await crash.job(job_id)).state is JobState.DOWNLOADED

    await crash.start()
    await finish(crash, job_id)
    post = await assert_delivered_once(crash, job_id, "sent by dm")
    assert post.channel_id == dm.id
    assert (await crash.job(job_id)).delivery_path == "dm"
    await assert_progress_says_done(crash, interaction)
