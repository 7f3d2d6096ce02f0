"""Every /pika mode from the command to the delivered MP4, with the exact body fal received."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bot.emulator import Submission
from bot.sandbox.fakediscord.records import FakeInteraction, StoredMessage
from tests.e2e.conftest import World, decodes, fal_output, job_id_of, mp4, png


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


async def delivered(world: World, interaction: FakeInteraction) -> tuple[StoredMessage, Submission]:
    """The one post of a job started by `interaction`, checked against what fal made."""
    post = await world.wait_for(lambda: (world.posts() or [None])[0])
    assert interaction.deferred
    job = await world.job(job_id_of(post))
    assert job.state == "delivered"
    assert len(world.fal.submissions) == 1
    [video] = post.attachments
    assert video.filename.endswith(".mp4")
    assert video.data == await fal_output(job.video_url)
    assert decodes(video.data) > 0
    assert f"<@{world.fake.member.id}>" in post.content
    assert post.pings.users == {world.fake.member.id}
    assert not post.pings.roles
    assert not post.pings.everyone
    return post, world.fal.submissions[0]


async def test_text_job_is_delivered_with_the_exact_fal_body(world: World) -> None:
    interaction = await world.command(
        "pika text", {"prompt": "a red fox in the snow", "resolution": "1080p", "seed": 42}
    )
    _, submission = await delivered(world, interaction)
    assert submission.endpoint_id == "fal-ai/pika/v2.5/text-to-video"
    assert submission.body == {"prompt": "a red fox in the snow", "resolution": "1080p", "seed": 42}


async def test_text_with_an_older_model_sends_aspect_ratio_and_duration(world: World) -> None:
    interaction = await world.command(
        "pika text",
        {
            "prompt": "  waves at dusk  ",
            "negative_prompt": "blur",
            "aspect_ratio": "9:16",
            "duration": 10,
            "seed": 7,
            "model": "v2.2",
        },
    )
    _, submission = await delivered(world, interaction)
    assert submission.endpoint_id == "fal-ai/pika/v2.2/text-to-video"
    assert submission.body == {
        "prompt": "waves at dusk",
        "negative_prompt": "blur",
        "aspect_ratio": "9:16",
        "duration": 10,
        "seed": 7,
    }


async def test_animate_sends_the_image_as_a_data_uri(world: World) -> None:
    image = png(640, 480)
    interaction = await world.command(
        "pika animate",
        {
            "image": world.attach(image, "cat.png"),
            "prompt": "the cat yawns",
            "resolution": "720p",
            "duration": 5,
            "seed": 3,
        },
    )
    _, submission = await delivered(world, interaction)
    assert submission.endpoint_id == "fal-ai/pika/v2.2/image-to-video"
    assert submission.body == {
        "image_url": data_uri(image, "image/png"),
        "prompt": "the cat yawns",
        "resolution": "720p",
        "duration": 5,
        "seed": 3,
    }


async def test_frames_sends_images_in_option_order_with_their_transitions(world: World) -> None:
    images = [png(512, 512, colour) for colour in ("red", "green", "blue")]
    interaction = await world.command(
        "pika frames",
        {
            "image1": world.attach(images[0], "a.png"),
            "image2": world.attach(images[1], "b.png"),
            "image3": world.attach(images[2], "c.png"),
            "prompt": "a flower opens",
            "durations": "3, 7",
            "prompts": "|petals fall",
            "seed": 11,
        },
    )
    _, submission = await delivered(world, interaction)
    assert submission.endpoint_id == "fal-ai/pika/v2.2/pikaframes"
    assert submission.body == {
        "image_urls": [data_uri(image, "image/png") for image in images],
        "prompt": "a flower opens",
        "transitions": [{"duration": 3}, {"duration": 7, "prompt": "petals fall"}],
        "seed": 11,
    }


async def test_scenes_sends_image_urls_and_its_options(world: World) -> None:
    images = [png(400, 300, "purple"), png(300, 400, "yellow")]
    interaction = await world.command(
        "pika scenes",
        {
            "image1": world.attach(images[0], "hero.png"),
            "image2": world.attach(images[1], "castle.png"),
            "prompt": "the hero walks to the castle",
            "ingredients_mode": "creative",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "seed": 5,
        },
    )
    _, submission = await delivered(world, interaction)
    assert submission.endpoint_id == "fal-ai/pika/v2.2/pikascenes"
    assert submission.scenes_field == "image_urls"
    assert submission.body == {
        "image_urls": [data_uri(image, "image/png") for image in images],
        "prompt": "the hero walks to the castle",
        "ingredients_mode": "creative",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "seed": 5,
    }


async def test_effect_sends_the_pikaffect(world: World) -> None:
    image = png(300, 300, "teal")
    interaction = await world.command(
        "pika effect",
        {"image": world.attach(image, "cake.png"), "effect": "Melt", "seed": 9},
    )
    post, submission = await delivered(world, interaction)
    assert submission.endpoint_id == "fal-ai/pika/v1.5/pikaffects"
    assert submission.body == {
        "image_url": data_uri(image, "image/png"),
        "pikaffect": "Melt",
        "seed": 9,
    }
    assert any(field["value"] == "Melt" for field in post.embeds[0]["fields"])


async def test_swap_sends_the_video_the_image_and_the_region(world: World) -> None:
    video, image = mp4(1.0), png(320, 320, "pink")
    interaction = await world.command(
        "pika swap",
        {
            "video": world.attach(video, "street.mp4"),
            "image": world.attach(image, "bike.png"),
            "region": "the red car",
            "prompt": "a bicycle",
            "seed": 1,
        },
    )
    _, submission = await delivered(world, interaction)
    assert submission.endpoint_id == "fal-ai/pika/v2/pikaswaps"
    assert submission.body == {
        "video_url": data_uri(video, "video/mp4"),
        "image_url": data_uri(image, "image/png"),
        "modify_region": "the red car",
        "prompt": "a bicycle",
        "seed": 1,
    }


async def test_swap_with_only_a_prompt_sends_no_image(world: World) -> None:
    video = mp4(1.0)
    interaction = await world.command(
        "pika swap",
        {"video": world.attach(video, "street.mp4"), "prompt": "a tram", "seed": 2},
    )
    _, submission = await delivered(world, interaction)
    assert submission.body == {
        "video_url": data_uri(video, "video/mp4"),
        "prompt": "a tram",
        "seed": 2,
    }


async def test_add_sends_the_video_and_the_image(world: World) -> None:
    video, image = mp4(1.0), png(256, 300, "white")
    interaction = await world.command(
        "pika add",
        {
            "video": world.attach(video, "room.mp4"),
            "image": world.attach(image, "lamp.png"),
            "prompt": "a lamp on the table",
            "negative_prompt": "smoke",
            "seed": 4,
        },
    )
    _, submission = await delivered(world, interaction)
    assert submission.endpoint_id == "fal-ai/pika/v2/pikadditions"
    assert submission.body == {
        "video_url": data_uri(video, "video/mp4"),
        "image_url": data_uri(image, "image/png"),
        "prompt": "a lamp on the table",
        "negative_prompt": "smoke",
        "seed": 4,
    }


def text_input_id(modal: dict[str, Any]) -> str:
    """The custom_id of the one text input in a modal, wherever its layout puts it."""
    found: list[str] = []

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if component.get("type") == 4:
                found.append(component["custom_id"])
            walk(list(component.get("components") or []))
            if isinstance(component.get("component"), dict):
                walk([component["component"]])

    walk(modal["components"])
    assert len(found) == 1, modal
    return found[0]


async def test_animate_with_pika_menu_asks_for_a_prompt_and_animates_the_image(
    world: World,
) -> None:
    image = png(600, 400, "olive")
    fake = world.fake
    message = await fake.post_message(
        fake.member, fake.channel, "look", attachments=[world.attach(image, "dog.png")]
    )
    opened = await fake.message_command(fake.member, fake.channel, "Animate with Pika", message)
    await world.wait_for(lambda: opened.modal)
    assert opened.modal is not None
    submitted = await fake.submit_modal(
        fake.member, opened, values={text_input_id(opened.modal): "  the dog wags its tail "}
    )
    _, submission = await delivered(world, submitted)
    assert submission.endpoint_id == "fal-ai/pika/v2.2/image-to-video"
    body = dict(submission.body)
    assert isinstance(body.pop("seed"), int)  # none was given: the bot picks one
    assert body == {"image_url": data_uri(image, "image/png"), "prompt": "the dog wags its tail"}


async def test_animate_with_pika_on_a_message_without_an_image_is_refused(world: World) -> None:
    fake = world.fake
    message = await fake.post_message(fake.member, fake.channel, "just words")
    opened = await fake.message_command(fake.member, fake.channel, "Animate with Pika", message)
    refused = await world.refusal(opened)
    assert refused.before_defer
    assert "PNG, JPEG or WebP" in refused.text
    assert world.fal.counts["submit"] == 0


@pytest.mark.world(data_uri_max_bytes=1024)
async def test_an_input_above_the_data_uri_limit_goes_through_fal_storage(world: World) -> None:
    video, image = mp4(1.0), png(256, 256, "black")
    assert len(image) <= 1024 < len(video)
    interaction = await world.command(
        "pika add",
        {
            "video": world.attach(video, "big.mp4"),
            "image": world.attach(image, "small.png"),
            "prompt": "a hat",
            "seed": 8,
        },
    )
    _, submission = await delivered(world, interaction)
    assert world.fal.counts["token"] == 1
    assert world.fal.counts["upload"] == 1
    video_url = submission.body.pop("video_url")
    assert video_url.startswith(world.fal.base_url + "/")
    assert await fal_output(video_url) == video
    assert submission.body == {
        "image_url": data_uri(image, "image/png"),
        "prompt": "a hat",
        "seed": 8,
    }
