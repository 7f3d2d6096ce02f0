"""A delivery step that fails in an unexpected way still tells the member: the video goes out as
a link and the progress reply says where it went, never left at "fetching and posting"."""

from __future__ import annotations

from bot.emulator import Fault
from bot.store import DeliveryPath, JobState
from tests.e2e.conftest import World, embed_text, job_id_of


async def test_a_video_the_re_encoder_cannot_read_is_posted_as_a_link(world: World) -> None:
    # fal hands over bytes that are no video; over the upload limit, PyAV fails to re-encode it.
    world.fal.inject(Fault(kind="file", status=200, body=b"\x00not a video" * 400))
    world.fake.set_attachment_size_limit(1024)
    interaction = await world.command("pika text", {"prompt": "unreadable result"})
    post = await world.wait_for(
        lambda: next((m for m in world.bot_messages() if "ready" in (m.content or "")), None)
    )
    job = await world.job(job_id_of(post))

    assert job.state is JobState.DELIVERED
    assert job.delivery_path == DeliveryPath.LINK
    assert job.result_message_id == post.id
    assert not post.attachments
    assert job.video_url is not None
    assert job.video_url in embed_text(post)
    assert post.pings.users == {world.fake.member.id}
    assert interaction.original is not None
    reply = embed_text(interaction.original)
    assert "Done" in reply
    assert "link is below" in reply
