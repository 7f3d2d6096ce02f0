"""A real discord.py bot logs in to the fake, syncs, answers commands, buttons, modals, menus."""

from __future__ import annotations

import pytest

from bot.sandbox.fakediscord import CommandMismatch, FakeDiscord, FakeDiscordError

from .conftest import DemoBot

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_bot_sees_ready_and_guild_create(fake: FakeDiscord, bot: DemoBot) -> None:
    guild = bot.get_guild(fake.guild.id)
    assert guild is not None
    assert guild.get_channel(fake.channel.id) is not None
    assert guild.me is not None
    assert [r.id for r in guild.me.roles if not r.is_default()] == [fake.bot_role.id]
    assert bot.application_id == fake.application_id
    channel = guild.get_channel(fake.channel.id)
    assert channel is not None
    assert channel.permissions_for(guild.me).attach_files
    sent = [f for f in fake.frames if f.direction == "out"]
    assert sent[0].op == 10  # HELLO
    assert [f.t for f in sent if f.op == 0][:2] == ["READY", "GUILD_CREATE"]
    assert 11 in [f.op for f in sent]  # the heartbeat discord.py sends at once was acknowledged
    identify = next(f for f in fake.frames if f.direction == "in" and f.op == 2)
    assert identify.data["token"] == "<sent>"


async def test_sync_stores_the_bot_commands(fake: FakeDiscord, bot: DemoBot) -> None:
    synced = fake.commands.get(fake.guild.id)
    assert sorted(c["name"] for c in synced) == ["Animate with Pika", "pika"]
    pika = next(c for c in synced if c["name"] == "pika")
    assert [o["name"] for o in pika["options"]] == ["text", "secret", "later"]


async def test_command_defers_follows_up_with_a_file_and_edits(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    image = fake.attachment(PNG, "cat.png", "image/png", width=8, height=8)
    interaction = await fake.command(
        fake.member, fake.channel, "pika text", {"prompt": "a cat", "image": image, "style": "wild"}
    )
    await fake.wait_for(lambda: interaction.original and interaction.original.history)

    assert interaction.response is not None
    assert interaction.response.type == 5
    reply = interaction.original
    assert reply is not None
    assert reply.content == "done: a cat"
    assert reply.history[-1].content == "made a cat (wild)"
    assert reply.visibility == "public"
    assert reply.allowed_mentions == {"parse": []}
    assert [a.data for a in reply.attachments] == [PNG]
    assert reply.find_component("demo:again") is not None
    assert fake.downloads(image) == 1
    assert await bot.http.get_from_cdn(reply.attachments[0].url) == PNG
    uploads = [r for r in fake.requests if r.files]
    assert [f.data for f in uploads[0].files] == [PNG]
    fake.assert_valid()


async def test_interaction_carries_what_the_api_sends(fake: FakeDiscord, bot: DemoBot) -> None:
    interaction = await fake.command(fake.member, fake.channel, "pika text", {"prompt": "x"})
    payload = interaction.payload
    assert payload["attachment_size_limit"] == 10 * 1024 * 1024
    assert payload["member"]["user"]["id"] == str(fake.member.id)
    assert payload["guild_id"] == str(fake.guild.id)
    assert payload["context"] == 0
    assert payload["data"]["options"] == [
        {"name": "text", "type": 1, "options": [{"name": "prompt", "type": 3, "value": "x"}]}
    ]
    await fake.wait_for(lambda: interaction.original and interaction.original.history)


@pytest.mark.parametrize(
    ("name", "options", "complaint"),
    [
        ("pika text", {"promt": "typo"}, "no option"),
        ("pika text", {"prompt": "x", "style": "sleepy"}, "choices"),
        ("pika text", {"prompt": 42}, "needs a str"),
        ("pika txt", {"prompt": "x"}, "no subcommand"),
        ("pika text", {}, "required"),
        ("animate", {}, "synced no"),
    ],
)
async def test_commands_not_matching_the_synced_json_fail_in_the_test(
    fake: FakeDiscord, bot: DemoBot, name: str, options: dict[str, object], complaint: str
) -> None:
    with pytest.raises(CommandMismatch, match=complaint):
        await fake.command(fake.member, fake.channel, name, options)


async def test_button_click_echoes_the_message_and_updates_it(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    command = await fake.command(fake.member, fake.channel, "pika text", {"prompt": "p"})
    await fake.wait_for(lambda: command.original and command.original.history)
    result = command.original
    assert result is not None

    click = await fake.click(fake.member, result, "demo:again")
    await fake.wait_for(lambda: click.acknowledged)

    echoed = click.payload["message"]
    assert echoed["id"] == str(result.id)
    assert echoed["components"] == result.history[-1].components
    assert click.response is not None
    assert click.response.type == 7
    assert result.content == "again!"


async def test_modal_opened_by_a_button_is_submitted(fake: FakeDiscord, bot: DemoBot) -> None:
    command = await fake.command(fake.member, fake.channel, "pika text", {"prompt": "p"})
    await fake.wait_for(lambda: command.original and command.original.history)
    assert command.original is not None
    click = await fake.click(fake.member, command.original, "demo:describe")
    await fake.wait_for(lambda: click.modal)

    frame = fake.attachment(PNG, "frame.png")
    submit = await fake.submit_modal(
        fake.member, click, values={"prompt": "a dog", "frames": [frame]}
    )
    await fake.wait_for(lambda: submit.original)

    assert submit.original is not None
    assert submit.original.content == f"described: a dog with files [{len(PNG)}]"
    assert submit.original.ephemeral


async def test_modal_inputs_must_exist(fake: FakeDiscord, bot: DemoBot) -> None:
    command = await fake.command(fake.member, fake.channel, "pika text", {"prompt": "p"})
    await fake.wait_for(lambda: command.original and command.original.history)
    assert command.original is not None
    click = await fake.click(fake.member, command.original, "demo:describe")
    await fake.wait_for(lambda: click.modal)

    with pytest.raises(FakeDiscordError, match="no inputs named"):
        await fake.submit_modal(fake.member, click, values={"prompt": "x", "title": "y"})
    with pytest.raises(FakeDiscordError, match="required"):
        await fake.submit_modal(fake.member, click, values={})


async def test_message_context_menu_gets_the_target_message(
    fake: FakeDiscord, bot: DemoBot
) -> None:
    upload = fake.attachment(PNG, "frame.png")
    target = await fake.post_message(fake.member, fake.channel, "look", attachments=[upload])

    menu = await fake.message_command(fake.member, fake.channel, "Animate with Pika", target)
    await fake.wait_for(lambda: menu.original)

    assert menu.original is not None
    assert menu.original.content == "animating 1 attachment(s) from alice"
    assert menu.original.ephemeral
