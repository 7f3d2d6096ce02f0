"""A server's rules for new jobs (allowed channels, prompt blocklist), who may act on a job, and
refusals that say when credits come back."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.pika import PikaRequest
from bot.store import GuildSettings, Job, QuotaExceeded, QuotaReason
from bot.store.rules import fold_text

# The options and request fields whose text a member wrote, so the blocklist applies to them.
TEXT_FIELDS = ("prompt", "negative_prompt", "prompts", "region")


class Action(StrEnum):
    """What a member may ask of a job: its buttons' actions (the values are their custom_ids'),
    /pika job (DETAILS) and /pika cancel (CANCEL)."""

    DETAILS = "details"
    DELETE = "delete"
    CANCEL = "cancel"
    REROLL = "reroll"
    REMIX = "remix"
    CONTINUE = "continue"


@dataclass(frozen=True, slots=True)
class Member:
    """Who asks, from which server (None: a direct message), and the two permissions jobs care
    about there (Administrator grants both)."""

    user_id: int
    guild_id: int | None
    manage_messages: bool = False
    manage_server: bool = False


# What others than its requester may do with a job, in the job's own server (README: "Who may
# act on a job"). Re-roll, Remix and Continue start a job from the requester's files: theirs only.
BY_MANAGE_MESSAGES = frozenset({Action.DETAILS, Action.DELETE})
BY_MANAGE_SERVER = frozenset({Action.DETAILS, Action.CANCEL})


def may_act_on(job: Job, member: Member, action: Action) -> bool:
    """The one rule for who may act on a job.

    Its requester may do anything with it, from its server or from a direct message (a video
    sent by DM has its buttons); moderators only in its server. From another server, nobody.
    """
    if member.guild_id is not None and member.guild_id != job.guild_id:
        return False
    if member.user_id == job.user_id:
        return True
    if member.guild_id is None:
        return False
    return (member.manage_messages and action in BY_MANAGE_MESSAGES) or (
        member.manage_server and action in BY_MANAGE_SERVER
    )


class NotAllowedHere(Exception):
    """This server's admins do not allow generation in this channel."""

    def __init__(self, allowed: Iterable[int]) -> None:
        channels = sorted(allowed)
        shown = ", ".join(f"<#{channel}>" for channel in channels[:10])
        more = f" and {len(channels) - 10} more" if len(channels) > 10 else ""
        super().__init__(
            "Videos can't be made in this channel. This server's admins allow them in "
            f"{shown}{more}. Nothing was charged."
        )
        self.allowed = tuple(channels)


class BlockedWord(Exception):
    """A prompt contains a word this server refuses."""

    def __init__(self, word: str) -> None:
        super().__init__(
            f"Your prompt contains \"{word}\", which this server's admins don't allow in "
            "prompts. Change it and try again. Nothing was charged."
        )
        self.word = word


class JobStillRuns(Exception):
    """Something failed after a job was accepted. The job runs (or runs on) all the same, so
    the member is told that it is accepted, and its id, never that nothing was charged."""

    def __init__(self, job_id: str, message: str) -> None:
        super().__init__(message)
        self.job_id = job_id

    @classmethod
    def unshown(cls, job_id: str) -> JobStillRuns:
        """Its progress reply could not be shown or remembered."""
        return cls(
            job_id,
            f"Your job `{job_id}` is accepted and will run: its credits are held, and you are "
            "only charged if the video arrives. The bot could not show its progress here; "
            f"`/pika job {job_id}` shows where it is.",
        )

    @classmethod
    def uncancelled(cls, job_id: str) -> JobStillRuns:
        """Asking fal to stop it failed."""
        return cls(
            job_id,
            f"Your job `{job_id}` is accepted and still running: the bot could not reach fal to "
            "stop it. Its credits are held, and you are only charged if the video arrives. Try "
            "cancelling again in a moment.",
        )


def relative_time(epoch: int) -> str:
    """Discord's markup for a moment, which each reader sees in their own time zone ("in 3
    hours"); plain text, as the channel mentions above are."""
    return f"<t:{epoch}:R>"


class QuotaRefused(QuotaExceeded):
    """A quota or budget refusal as the member reads it: what is left, what the job costs, and
    when the credits come back (also kept as data: `reason`, `resets_at`, `cause`)."""

    def __init__(self, cause: QuotaExceeded, *, resets_at: int) -> None:
        message = str(cause)
        resets = relative_time(resets_at)
        if cause.reason is QuotaReason.MEMBER_ALLOWANCE:
            message += f" Your credits reset {resets}."
        elif cause.reason is QuotaReason.GUILD_BUDGET:
            message += f" The server's budget resets {resets}."
        elif cause.reason is QuotaReason.GLOBAL_BUDGET:
            message += f" The bot's budget resets {resets}."
        super().__init__(message, cost=cause.cost, left=cause.left, limit=cause.limit)
        self.reason = cause.reason
        self.cause = cause
        self.resets_at = resets_at


def explain(error: QuotaExceeded, *, resets_at: int) -> QuotaRefused:
    """The refusal to show for a quota error (an explained one stays as it is)."""
    if isinstance(error, QuotaRefused):
        return error
    return QuotaRefused(error, resets_at=resets_at)


def check_channel(
    settings: GuildSettings, channel_id: int, *, parent_id: int | None = None
) -> None:
    """Refuse a channel the server's admins have not allowed (no list: every channel is).

    A thread (a forum's post is one) is allowed where its parent channel is.
    """
    if settings.channel_allowed(channel_id):
        return
    if parent_id is not None and settings.channel_allowed(parent_id):
        return
    raise NotAllowedHere(settings.allowed_channels)


def blocked_word(words: Iterable[str], texts: Iterable[str]) -> str | None:
    """The first listed word found in the texts, as a whole word, both folded by the one rule
    blocked words are stored by (`fold_text`: case and runs of whitespace don't matter)."""
    folded = [fold_text(text) for text in texts]
    folded = [text for text in folded if text]
    if not folded:
        return None
    for word in words:
        # Whole words only, so "ass" does not refuse "class"; \w keeps accents and digits inside.
        pattern = re.compile(rf"(?<!\w){re.escape(fold_text(word))}(?!\w)")
        if any(pattern.search(text) for text in folded):
            return word
    return None


def check_prompt(settings: GuildSettings, texts: Iterable[str]) -> None:
    """Refuse a prompt that contains a word of the server's blocklist."""
    if not settings.blocklist:
        return
    word = blocked_word(settings.blocklist, texts)
    if word is not None:
        raise BlockedWord(word)


def option_texts(options: Mapping[str, object]) -> list[str]:
    """The free text a member typed into a command's options."""
    return [value for name in TEXT_FIELDS if isinstance(value := options.get(name), str)]


def request_texts(request: PikaRequest) -> list[str]:
    """The free text of a request: prompts, negative prompt, region, transitions' prompts."""
    fields = request.model_dump(mode="json")
    texts = option_texts(fields)
    for transition in fields.get("transitions") or ():
        if isinstance(transition, dict) and isinstance(transition.get("prompt"), str):
            texts.append(transition["prompt"])
    return texts
