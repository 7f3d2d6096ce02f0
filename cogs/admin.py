"""/pikaadmin: a server's admins run its Pika budget, limits, channels and blocklist."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.jobs import Accounts
from bot.pika import MODEL_CHOICES, RESOLUTIONS, Mode
from bot.store import RulesStore
from bot.store.rules import fold_text
from cogs.interactions import manages_server
from cogs.statements import (
    blocklist_line,
    channels_line,
    limits_embed,
    settings_embed,
    usage_embed,
)
from cogs.statements import credits as credit_words

if TYPE_CHECKING:
    from bot.app import PikaBot

log = logging.getLogger(__name__)

Credits = app_commands.Range[int, 0, 1_000_000]
Grant = app_commands.Range[int, 1, 1_000_000]
Budget = app_commands.Range[int, 0, 100_000_000]
Days = app_commands.Range[int, 1, 31]
Note = app_commands.Range[str, 1, 200]
Word = app_commands.Range[str, 1, 100]


class AllowableChannel(app_commands.Transformer):
    """The channels videos can be allowed in: text and announcement channels, and forums (a
    thread, or a forum's post, is allowed where its channel is)."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return [discord.ChannelType.text, discord.ChannelType.news, discord.ChannelType.forum]

    async def transform(
        self, interaction: discord.Interaction, value: Any, /
    ) -> app_commands.AppCommandChannel:
        assert isinstance(value, app_commands.AppCommandChannel)
        return value


Allowable = app_commands.Transform[app_commands.AppCommandChannel, AllowableChannel]

CLEARABLE = ("text_model", "animate_model", "resolution", "audit_channel")


class NotAnAdmin(app_commands.CheckFailure):
    """Someone without Manage Server ran an admin command (Discord hides them, but a server's
    integration settings can show them to anyone)."""

    def __init__(self) -> None:
        super().__init__(
            "Only members with the Manage Server permission can use /pikaadmin. Nothing was "
            "changed."
        )


def choice_list(values: tuple[str, ...]) -> list[app_commands.Choice[str]]:
    """Discord choices whose names are their values."""
    return [app_commands.Choice(name=value, value=value) for value in values]


class Admin(commands.Cog):
    """Every /pikaadmin command; each checks Manage Server again when it runs."""

    admin = app_commands.Group(
        name="pikaadmin",
        description="Run Pika in this server: limits, budget, channels, blocklist, usage",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )
    limits = app_commands.Group(
        name="limits", description="Daily credit allowances per role or member", parent=admin
    )
    channels = app_commands.Group(
        name="channels", description="Where members can make videos", parent=admin
    )
    blocklist = app_commands.Group(
        name="blocklist", description="Words refused in prompts", parent=admin
    )

    def __init__(self, bot: PikaBot) -> None:
        self.bot = bot

    @property
    def accounts(self) -> Accounts:
        return self.bot.jobs.accounts

    @property
    def rules(self) -> RulesStore:
        return self.bot.store.rules

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        # Discord's default_member_permissions only hides the commands; admins can override
        # that per role or member, so the permission is checked again on every run.
        if not manages_server(interaction):
            raise NotAnAdmin()
        return True

    # -- replies and the audit channel -----------------------------------------------------

    async def done(self, interaction: discord.Interaction, text: str) -> None:
        """Tell the admin what changed (only them), then post it to the audit channel."""
        await interaction.response.send_message(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )
        await self.announce(interaction, text)

    async def show(self, interaction: discord.Interaction, embed: discord.Embed) -> None:
        """Show something to the admin only."""
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    async def announce(self, interaction: discord.Interaction, text: str) -> None:
        """Post an admin action to the server's audit channel, if it has one."""
        guild_id = interaction.guild_id or 0
        channel_id = (await self.rules.settings(guild_id)).audit_channel_id
        if channel_id is None:
            return
        line = f"<@{interaction.user.id}> used /pikaadmin: {text}"
        try:
            channel = self.bot.get_channel(channel_id) or await self.bot.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise TypeError(f"channel {channel_id} cannot take messages")
            await channel.send(line[:2000], allowed_mentions=discord.AllowedMentions.none())
        except (discord.HTTPException, TypeError) as error:
            # The action is in the audit table either way; the channel is only a mirror.
            log.warning("could not post to the audit channel of guild %s: %s", guild_id, error)

    # -- limits ----------------------------------------------------------------------------

    @limits.command(name="role", description="Set or clear the daily allowance of a role")
    @app_commands.describe(
        role="The role", credits="Credits per day; leave out to clear the role's allowance"
    )
    async def limits_role(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        credits: Credits | None = None,
    ) -> None:
        await self.rules.set_role_limit(
            role.guild.id, role.id, credits, actor_id=interaction.user.id
        )
        if credits is None:
            await self.done(interaction, f"cleared the daily allowance of {role.mention}.")
        else:
            await self.done(
                interaction,
                f"set the daily allowance of {role.mention} to {_credits(credits)} "
                "(a member gets their highest role's).",
            )

    @limits.command(name="member", description="Set or clear one member's own daily allowance")
    @app_commands.describe(
        member="The member",
        credits="Credits per day; leave out to clear the member's own allowance",
    )
    async def limits_member(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        credits: Credits | None = None,
    ) -> None:
        await self.rules.set_member_limit(
            member.guild.id, member.id, credits, actor_id=interaction.user.id
        )
        if credits is None:
            await self.done(interaction, f"cleared the own daily allowance of {member.mention}.")
        else:
            await self.done(
                interaction,
                f"set the daily allowance of {member.mention} to {_credits(credits)} "
                "(it beats their roles).",
            )

    @limits.command(name="list", description="Every limit in effect in this server")
    async def limits_list(self, interaction: discord.Interaction) -> None:
        await self.show(
            interaction, limits_embed(await self.accounts.server_limits(_guild(interaction)))
        )

    # -- credits and blocks ----------------------------------------------------------------

    @admin.command(name="grant", description="Give a member one-off credits for today")
    @app_commands.describe(member="The member", credits="Credits to add today", note="Why")
    async def grant(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        credits: Grant,
        note: Note | None = None,
    ) -> None:
        await self.accounts.grant(
            _guild(interaction), member.id, credits, actor_id=interaction.user.id, note=note or ""
        )
        await self.done(
            interaction,
            f"gave {member.mention} {_credits(credits)} for today{_why(note)}.",
        )

    @admin.command(name="reset", description="Give a member their full allowance back for today")
    @app_commands.describe(member="The member", note="Why")
    async def reset(
        self, interaction: discord.Interaction, member: discord.Member, note: Note | None = None
    ) -> None:
        entry = await self.accounts.reset(
            _guild(interaction), member.id, actor_id=interaction.user.id, note=note or ""
        )
        await self.done(
            interaction,
            f"reset {member.mention}'s credits for today ({_credits(entry.amount)} given back)"
            f"{_why(note)}.",
        )

    @admin.command(name="block", description="Stop a member from making videos in this server")
    @app_commands.describe(member="The member", reason="Why (shown to other admins)")
    async def block(
        self, interaction: discord.Interaction, member: discord.Member, reason: Note | None = None
    ) -> None:
        await self.rules.block_member(
            _guild(interaction), member.id, actor_id=interaction.user.id, reason=reason or ""
        )
        await self.done(interaction, f"blocked {member.mention} from making videos{_why(reason)}.")

    @admin.command(name="unblock", description="Let a blocked member make videos again")
    @app_commands.describe(member="The member")
    async def unblock(self, interaction: discord.Interaction, member: discord.Member) -> None:
        if await self.rules.unblock_member(
            _guild(interaction), member.id, actor_id=interaction.user.id
        ):
            await self.done(interaction, f"unblocked {member.mention}.")
        else:
            await self.show(interaction, _note(f"{member.mention} was not blocked."))

    @admin.command(name="budget", description="See or set this server's daily budget in credits")
    @app_commands.describe(
        credits="Credits the whole server may spend per day; leave out to see the budget",
        default="Go back to the bot's default budget",
    )
    async def budget(
        self,
        interaction: discord.Interaction,
        credits: Budget | None = None,
        default: bool = False,
    ) -> None:
        guild_id = _guild(interaction)
        if default:
            await self.rules.set_daily_budget(guild_id, None, actor_id=interaction.user.id)
            limits = await self.accounts.server_limits(guild_id)
            await self.done(
                interaction,
                f"set this server's daily budget back to the bot's default, "
                f"{_credits(limits.guild_budget)}.",
            )
            return
        ceiling = self.accounts.limits.global_daily_budget
        if credits is not None and credits > ceiling:
            # Every server shares the operator's budget: a larger one here is a promise the
            # bot would break at the first busy day, so it is refused rather than stored.
            await self.show(
                interaction,
                _note(
                    f"A server's daily budget can be at most {_credits(ceiling)}, the bot "
                    "operator's budget for all servers together. Nothing changed."
                ),
            )
            return
        if credits is not None:
            await self.rules.set_daily_budget(guild_id, credits, actor_id=interaction.user.id)
            await self.done(interaction, f"set this server's daily budget to {_credits(credits)}.")
            return
        limits = await self.accounts.server_limits(guild_id)
        source = " (the bot's default)" if limits.guild_budget_is_default else ""
        await self.show(
            interaction,
            _note(
                f"This server's daily budget is {_credits(limits.guild_budget)}{source}; "
                f"{_credits(limits.guild_spent)} spent today."
            ),
        )

    # -- channels --------------------------------------------------------------------------

    @channels.command(name="allow", description="Allow videos in a channel (then only listed ones)")
    @app_commands.describe(channel="The channel")
    async def channels_allow(self, interaction: discord.Interaction, channel: Allowable) -> None:
        guild_id = _guild(interaction)
        if await self.rules.allow_channel(guild_id, channel.id, actor_id=interaction.user.id):
            settings = await self.rules.settings(guild_id)
            await self.done(
                interaction, f"allowed videos in {channel.mention}. {channels_line(settings)}"
            )
        else:
            await self.show(interaction, _note(f"{channel.mention} is already allowed."))

    @channels.command(name="disallow", description="Take a channel off the allowed list")
    @app_commands.describe(channel="The channel")
    async def channels_disallow(self, interaction: discord.Interaction, channel: Allowable) -> None:
        guild_id = _guild(interaction)
        actor = interaction.user.id
        if await self.rules.disallow_channel(guild_id, channel.id, actor_id=actor):
            settings = await self.rules.settings(guild_id)
            await self.done(
                interaction,
                f"took {channel.mention} off the allowed channels. {channels_line(settings)}",
            )
        else:
            await self.show(
                interaction,
                _note(
                    f"{channel.mention} is not on the allowed list. "
                    f"{channels_line(await self.rules.settings(guild_id))}"
                ),
            )

    @channels.command(name="everywhere", description="Allow videos in every channel again")
    async def channels_everywhere(self, interaction: discord.Interaction) -> None:
        await self.rules.clear_allowed_channels(_guild(interaction), actor_id=interaction.user.id)
        await self.done(interaction, "allowed videos in every channel again.")

    @channels.command(name="list", description="Where members can make videos")
    async def channels_list(self, interaction: discord.Interaction) -> None:
        settings = await self.rules.settings(_guild(interaction))
        await self.show(interaction, _note(channels_line(settings)))

    # -- blocklist -------------------------------------------------------------------------

    @blocklist.command(name="add", description="Refuse prompts containing a word")
    @app_commands.describe(word="A word or phrase, matched as a whole word, any case")
    async def blocklist_add(self, interaction: discord.Interaction, word: Word) -> None:
        guild_id = _guild(interaction)
        if await self.rules.add_blocked_word(guild_id, word, actor_id=interaction.user.id):
            await self.done(interaction, f"added `{_shown(word)}` to the prompt blocklist.")
        else:
            await self.show(interaction, _note(f"`{_shown(word)}` is already blocked."))

    @blocklist.command(name="remove", description="Stop refusing a word")
    @app_commands.describe(word="The word or phrase")
    async def blocklist_remove(self, interaction: discord.Interaction, word: Word) -> None:
        guild_id = _guild(interaction)
        if await self.rules.remove_blocked_word(guild_id, word, actor_id=interaction.user.id):
            await self.done(interaction, f"removed `{_shown(word)}` from the prompt blocklist.")
        else:
            await self.show(interaction, _note(f"`{_shown(word)}` is not on the blocklist."))

    @blocklist.command(name="list", description="The words refused in prompts")
    async def blocklist_list(self, interaction: discord.Interaction) -> None:
        settings = await self.rules.settings(_guild(interaction))
        await self.show(interaction, _note(blocklist_line(settings)))

    # -- usage and settings ----------------------------------------------------------------

    @admin.command(name="usage", description="Spend per day, top members, failures and refunds")
    @app_commands.describe(days="How many days back (default 7)")
    async def usage(self, interaction: discord.Interaction, days: Days = 7) -> None:
        usage = await self.accounts.usage(_guild(interaction), days=days)
        await self.show(interaction, usage_embed(usage, days=days))

    @admin.command(name="settings", description="See or change defaults and the audit channel")
    @app_commands.describe(
        text_model="Model for /pika text when a member names none",
        animate_model="Model for /pika animate when a member names none",
        resolution="Resolution when a member names none (where the model makes it)",
        audit_channel="Post every /pikaadmin action to this channel",
        clear="Go back to the bot's default for one setting",
    )
    @app_commands.choices(
        text_model=[
            app_commands.Choice(name=c.name, value=c.value) for c in MODEL_CHOICES[Mode.TEXT]
        ],
        animate_model=[
            app_commands.Choice(name=c.name, value=c.value) for c in MODEL_CHOICES[Mode.ANIMATE]
        ],
        resolution=[app_commands.Choice(name=c.name, value=c.value) for c in RESOLUTIONS],
        clear=choice_list(CLEARABLE),
    )
    async def settings(
        self,
        interaction: discord.Interaction,
        text_model: str | None = None,
        animate_model: str | None = None,
        resolution: str | None = None,
        audit_channel: discord.TextChannel | None = None,
        clear: str | None = None,
    ) -> None:
        guild_id, actor = _guild(interaction), interaction.user.id
        changes: list[str] = []
        if clear == "text_model":
            await self.accounts.set_default_model(guild_id, Mode.TEXT, None, actor_id=actor)
            changes.append("the default text model back to the bot's")
        elif clear == "animate_model":
            await self.accounts.set_default_model(guild_id, Mode.ANIMATE, None, actor_id=actor)
            changes.append("the default animate model back to the bot's")
        elif clear == "resolution":
            await self.accounts.set_default_resolution(guild_id, None, actor_id=actor)
            changes.append("the default resolution back to each model's")
        elif clear == "audit_channel":
            await self.rules.set_audit_channel(guild_id, None, actor_id=actor)
            changes.append("no audit channel")
        if text_model is not None:
            await self.accounts.set_default_model(guild_id, Mode.TEXT, text_model, actor_id=actor)
            changes.append(f"the default text model to {text_model}")
        if animate_model is not None:
            await self.accounts.set_default_model(
                guild_id, Mode.ANIMATE, animate_model, actor_id=actor
            )
            changes.append(f"the default animate model to {animate_model}")
        if resolution is not None:
            await self.accounts.set_default_resolution(guild_id, resolution, actor_id=actor)
            changes.append(f"the default resolution to {resolution}")
        if audit_channel is not None:
            await self.rules.set_audit_channel(guild_id, audit_channel.id, actor_id=actor)
            changes.append(f"the audit channel to {audit_channel.mention}")
        if not changes:
            await self.show(interaction, settings_embed(await self.rules.settings(guild_id)))
            return
        await self.done(interaction, "set " + "; ".join(changes) + ".")


def _guild(interaction: discord.Interaction) -> int:
    # The group is guild_only, so Discord never sends these from a DM.
    assert interaction.guild_id is not None
    return interaction.guild_id


def _credits(amount: int) -> str:
    return credit_words(amount)


def _why(note: str | None) -> str:
    return f" ({discord.utils.escape_markdown(note)})" if note else ""


def _shown(word: str) -> str:
    """The word as the blocklist keeps it (the store's one rule), safe inside `code`."""
    return fold_text(word).replace("`", "'")


def _note(text: str) -> discord.Embed:
    return discord.Embed(description=text, colour=discord.Colour.blurple())


async def setup(bot: commands.Bot) -> None:
    from bot.app import PikaBot

    assert isinstance(bot, PikaBot)
    await bot.add_cog(Admin(bot))
