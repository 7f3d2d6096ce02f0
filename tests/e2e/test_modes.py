"""Every /pika mode from the command to the delivered MP4, with the exact body fal received."""

from __future__ import annotations

import io

import av
import httpx

from bot.fakediscord.records import StoredMessage
from tests.e2e.conftest import World


def job_id_of(post: StoredMessage) -> str:
    """The job id a Pika post names in its embed footer."""
    footer = post.embeds[0]["footer"]["text"]
    assert footer.startswith("job ")
    return str(footer.removeprefix("job "))


async def fal_output(url: str | None) -> bytes:
    """The video fal (the emulator) made, fetched straight from it."""
    assert url is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.content


def decodes(data: bytes) -> int:
    """How many video frames an MP4 holds (raises if it is not one)."""
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_text_job_is_delivered_with_the_exact_fal_body(world: World) -> None:
    interaction = await world.command(
        "pika text", {"prompt": "a red fox in the snow", "resolution": "1080p", "seed": 42}
    )
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    submission = world.fal.submissions[0]
    assert submission.endpoint_id == "fal-ai/pika/v2.5/text-to-video"
    assert submission.body == {"prompt": "a red fox in the snow", "resolution": "1080p", "seed": 42}
    assert interaction.response is not None
    assert interaction.deferred
    video = post.attachments[0]
    job = await world.job(job_id_of(post))
    assert job.state == "delivered"
    assert video.data == await fal_output(job.video_url)
    assert decodes(video.data) > 0
    assert f"<@{world.fake.member.id}>" in post.content
    assert post.pings.users == {world.fake.member.id}
    assert not post.pings.roles
    assert not post.pings.everyone
