"""The sandbox run: the fake Discord, the fal emulator and the real bot play every mode once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bot.app import PikaBot
from bot.config import Settings
from bot.emulator import FalEmulator, JobScript, PreviewSettings
from bot.fal import FalClient
from bot.sandbox import inputs
from bot.sandbox.fakediscord import BodyCheck, FakeDiscord, FakeInteraction, StoredMessage
from bot.sandbox.inputs import Upload
from bot.sandbox.transcript import (
    Transcript,
    command_line,
    describe_message,
    describe_modal,
    modal_inputs,
    readable,
)
from bot.services import build_services
from bot.store import Job, JobState, open_store

_FOOTER = re.compile(r"job ([a-z2-7]{8})")
# A click may answer privately before its job's reply appears; wait this long for the job.
_CLICK_GRACE_S = 5.0
_VIDEO_NAME = re.compile(r"\d\d-[a-z-]+\.mp4")


class SandboxFailed(Exception):
    """A sandbox step did not end with a delivered video; the message says which and why."""


@dataclass(frozen=True)
class SandboxSizes:
    """How big the inputs and the emulator's videos are, and how long fal pretends to take."""

    image_side: int = 512
    clip_width: int = 480
    clip_height: int = 272
    clip_seconds: float = 2.0
    preview: PreviewSettings = field(
        default_factory=lambda: PreviewSettings(short_side=360, fps=12, seconds=3.0)
    )
    queue_seconds: float = 0.5
    run_seconds: float = 1.0
    job_timeout: float = 120.0


FULL = SandboxSizes()
# For the test suite: the smallest inputs the bot accepts and tiny, instant videos.
SMALL = SandboxSizes(
    image_side=256,
    clip_width=96,
    clip_height=64,
    clip_seconds=0.5,
    preview=PreviewSettings(short_side=32, fps=4, seconds=0.5),
    queue_seconds=0.0,
    run_seconds=0.0,
    job_timeout=30.0,
)


@dataclass(frozen=True)
class StepResult:
    """One played step: what it was, its job, and the video saved from it."""

    number: int
    slug: str
    title: str
    job_id: str
    video: Path


@dataclass(frozen=True)
class SandboxReport:
    """What a sandbox run produced."""

    out: Path
    transcript: Path
    steps: tuple[StepResult, ...]
    skipped: tuple[str, ...]
    discord_problems: tuple[str, ...]


class _SandboxSettings(Settings):
    """Settings from explicit values only: a sandbox must never pick up a real token or URL."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _job_of(message: StoredMessage) -> str | None:
    for embed in message.embeds:
        match = _FOOTER.fullmatch(str((embed.get("footer") or {}).get("text") or ""))
        if match:
            return match[1]
    return None


def _text_of(message: StoredMessage) -> str:
    parts = [message.content]
    for embed in message.embeds:
        parts += [str(embed.get("title") or ""), str(embed.get("description") or "")]
        parts += [f"{f.get('name')}: {f.get('value')}" for f in embed.get("fields") or []]
    return " ".join(p for p in parts if p).strip() or "(an empty reply)"


def _normalised(label: object) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(label or "").lower()).strip("_")


class _Session:
    """One run: the running fakes and bot, the out folder, and the transcript so far."""

    def __init__(
        self,
        fake: FakeDiscord,
        bot: PikaBot,
        out: Path,
        sizes: SandboxSizes,
        say: Callable[[str], None],
    ) -> None:
        self.fake = fake
        self.bot = bot
        self.out = out
        self.sizes = sizes
        self.say = say
        self.member = fake.member
        self.names = {u.id: u.username for u in fake.world.users.values()}
        self.names.update({c.id: c.name for c in fake.world.channels.values() if c.name})
        self.transcript = Transcript(
            member=fake.member.username, channel=fake.channel.name or "", server=fake.guild.name
        )
        self.steps: list[StepResult] = []
        self.posts: dict[str, StoredMessage] = {}
        self.skipped: list[str] = []

    # -- the member's actions --------------------------------------------------------------

    def upload(self, file: Upload) -> dict[str, Any]:
        """Attach a file as the member (it is also kept in the out folder's inputs/)."""
        folder = self.out / "inputs"
        folder.mkdir(exist_ok=True)
        (folder / file.filename).write_bytes(file.data)
        return self.fake.attachment(
            file.data, file.filename, file.content_type, file.width, file.height
        )

    async def command(self, slug: str, title: str, name: str, options: dict[str, Any]) -> None:
        """Type a slash command and follow it to its delivered video."""
        action = [f"**{self.member.username}** typed `{command_line(name, options)}`"]
        await self.play(
            slug,
            title,
            action,
            lambda: self.fake.command(self.member, self.fake.channel, name, options),
        )

    async def menu(self, slug: str, title: str, image: Upload, prompt: str) -> None:
        """Post a picture, then use "Animate with Pika" on it and fill in the form."""
        attachment = self.upload(image)
        posted = await self.fake.post_message(
            self.member, self.fake.channel, "Look what I drew!", attachments=[attachment]
        )
        action = [
            f"**{self.member.username}** posted a message with 📎 {image.filename}, then "
            "right-clicked it and chose **Apps → Animate with Pika**",
        ]
        await self.play(
            slug,
            title,
            action,
            lambda: self.fake.message_command(
                self.member, self.fake.channel, "Animate with Pika", posted
            ),
            form={"prompt": prompt},
            shown_before=[posted],
        )

    async def click(
        self, slug: str, title: str, action: str, on: list[str], form: Mapping[str, str]
    ) -> None:
        """Press one of a result's buttons (on the first of `on`'s posts that has it)."""
        custom = f"pika:{action}:"
        found = [
            (source, post, f"{custom}{_job_of(post)}")
            for source in on
            if (post := self.posts.get(source)) is not None
            and post.find_component(f"{custom}{_job_of(post)}") is not None
        ]
        if not found:
            note = f"{title}: no result post has a {action!r} button yet; skipped"
            self.skipped.append(note)
            self.transcript.add(title, [f"Skipped: {note}."])
            self.say(f"  skipped: {note}")
            return
        source, post, custom_id = found[0]
        button = post.find_component(custom_id) or {}
        number = next(s.number for s in self.steps if s.slug == source)
        what = [
            f"**{self.member.username}** clicked **[{button.get('label') or action}]** under "
            f"the video of step {number} (job `{_job_of(post)}`)"
        ]
        await self.play(
            slug,
            title,
            what,
            lambda: self.fake.click(self.member, post, custom_id),
            form=form,
            click=True,
        )

    # -- following one step ----------------------------------------------------------------

    def _all_messages(self) -> list[StoredMessage]:
        return sorted(self.fake.store.by_id.values(), key=lambda m: m.id)

    async def play(
        self,
        slug: str,
        title: str,
        action: list[str],
        start: Callable[[], Awaitable[FakeInteraction]],
        *,
        form: Mapping[str, str] | None = None,
        click: bool = False,
        shown_before: Sequence[StoredMessage] = (),
    ) -> None:
        """Start an interaction, answer its form if it opens one, follow its job to the video,
        save the video and write the step into the transcript (also when it fails)."""
        number = len(self.transcript.sections) + 1
        earlier = {m.id: (len(m.history), m.deleted) for m in self._all_messages()}
        for message in shown_before:
            earlier.pop(message.id, None)
        lines = list(action)
        saved: dict[int, str] = {}
        try:
            interaction = await start()
            await self.fake.wait_for_response(interaction, timeout=self.sizes.job_timeout)
            modal = interaction.modal
            if modal is not None:
                answers = self._fill(modal, form or {})
                values = {custom_id: value for _, custom_id, value in answers}
                lines.append("")
                lines += describe_modal(modal)
                shown = ", ".join(f"{label}: “{value}”" for label, _, value in answers)
                lines += ["", f"**{self.member.username}** filled it in ({shown}) and submitted"]
                interaction = await self.fake.submit_modal(self.member, interaction, values=values)
            job_id = await self._job_started(earlier, interaction, click=click)
            job = await asyncio.wait_for(self.bot.jobs.wait_ended(job_id), self.sizes.job_timeout)
            post = await self._delivered(job_id, job)
            video = self.out / f"{number:02d}-{slug}.mp4"
            video.write_bytes(post.attachments[0].data)
            saved[post.attachments[0].id] = video.name
            self.posts[slug] = post
            self.steps.append(StepResult(number, slug, title, job_id, video))
            self.say(f"  {video.name:24} job {job_id}  {title}")
        except SandboxFailed as failure:
            raise SandboxFailed(f"step {number} ({title}): {failure}") from None
        except TimeoutError:
            raise SandboxFailed(
                f"step {number} ({title}): nothing happened within "
                f"{self.sizes.job_timeout:.0f} s; see the transcript"
            ) from None
        finally:
            self.transcript.add(title, [*lines, "", *self._seen(earlier, saved)])

    def _fill(
        self, modal: Mapping[str, Any], form: Mapping[str, str]
    ) -> list[tuple[str, str, str]]:
        """Answers for a modal's text inputs, matched by custom_id or label: (label, id, value).

        Inputs left out keep what the bot pre-filled; a required empty one gets a stock answer.
        """
        answers: list[tuple[str, str, str]] = []
        for text_input in modal_inputs(modal):
            custom_id = str(text_input.get("custom_id"))
            label = str(text_input.get("label") or custom_id)
            key = custom_id if custom_id in form else _normalised(label)
            if key in form:
                answers.append((label, custom_id, form[key]))
            elif text_input.get("required", True) and not text_input.get("value"):
                answers.append((label, custom_id, "make it even better"))
        return answers

    def _seen(self, earlier: Mapping[int, tuple[int, bool]], saved: Mapping[int, str]) -> list[str]:
        """What the member saw during a step: new messages, then earlier ones that changed."""
        lines: list[str] = []
        changed: list[StoredMessage] = []
        for message in self._all_messages():
            if message.id not in earlier:
                lines += describe_message(message, self.names, saved=saved)
            elif earlier[message.id] != (len(message.history), message.deleted):
                changed.append(message)
        if changed:
            lines += ["", "Earlier messages that changed meanwhile:", ""]
            for message in changed:
                lines += describe_message(message, self.names)
        return lines

    async def _job_started(
        self, earlier: Mapping[int, Any], interaction: FakeInteraction, *, click: bool
    ) -> str:
        """The id of the job the interaction started, or SandboxFailed with the bot's answer."""

        def job_or_refusal() -> tuple[str, str] | None:
            for message in self._all_messages():
                if message.id not in earlier and (job_id := _job_of(message)):
                    return ("job", job_id)
            for reply in (interaction.original, *interaction.followups):
                if reply is None or reply.deleted or reply.loading:
                    continue
                if reply.ephemeral and _job_of(reply) is None:
                    return ("refused", _text_of(reply))
            return None

        def job_only() -> tuple[str, str] | None:
            found = job_or_refusal()
            return found if found and found[0] == "job" else None

        answer = await self.fake.wait_for(job_or_refusal, timeout=self.sizes.job_timeout)
        if answer and answer[0] == "refused" and click:
            # A button may say something privately first and start its job right after.
            with contextlib.suppress(TimeoutError):
                answer = await self.fake.wait_for(job_only, timeout=_CLICK_GRACE_S)
        assert answer is not None
        kind, text = answer
        if kind == "refused":
            raise SandboxFailed(f"the bot refused: {readable(text, self.names)}")
        return text

    async def _delivered(self, job_id: str, job: Job | None) -> StoredMessage:
        if job is None or job.state is not JobState.DELIVERED:
            state = "vanished" if job is None else f"ended {job.state.value}"
            why = f": {job.error}" if job and job.error else ""
            raise SandboxFailed(f"job {job_id} {state}{why}")

        def post() -> StoredMessage | None:
            for message in self._all_messages():
                if _job_of(message) == job_id and message.attachments and not message.deleted:
                    return message
            return None

        found = await self.fake.wait_for(post, timeout=self.sizes.job_timeout)
        assert found is not None
        return found


async def _plays(session: _Session, sizes: SandboxSizes) -> None:
    """One job of every mode, the message menu, then Re-roll, Remix and Continue."""
    side = sizes.image_side
    clip = inputs.clip(sizes.clip_width, sizes.clip_height, sizes.clip_seconds)
    up = session.upload
    await session.command(
        "text",
        "Text to video",
        "pika text",
        {
            "prompt": "a red fox trotting through fresh snow at dawn",
            "resolution": "720p",
            "duration": 5,
        },
    )
    await session.command(
        "animate",
        "Animate an image",
        "pika animate",
        {"image": up(inputs.sunset(side)), "prompt": "the sun sinks slowly behind the hills"},
    )
    await session.command(
        "frames",
        "Keyframes",
        "pika frames",
        {
            "image1": up(inputs.keyframe(side, 0, 3)),
            "image2": up(inputs.keyframe(side, 1, 3)),
            "image3": up(inputs.keyframe(side, 2, 3)),
            "prompt": "a ball rolls across the meadow as night falls",
            "durations": "3,4",
        },
    )
    await session.command(
        "scenes",
        "Scenes",
        "pika scenes",
        {
            "image1": up(inputs.cat(side)),
            "image2": up(inputs.beach(side)),
            "prompt": "the cat naps under the parasol on the beach",
            "ingredients_mode": "creative",
            "aspect_ratio": "16:9",
        },
    )
    await session.command(
        "effect",
        "Effect",
        "pika effect",
        {"image": up(inputs.teapot(side)), "effect": "Inflate"},
    )
    await session.command(
        "swap",
        "Swap",
        "pika swap",
        {
            "video": up(clip),
            "image": up(inputs.star(side)),
            "region": "the red square",
        },
    )
    await session.command(
        "add",
        "Add to a video",
        "pika add",
        {
            "video": up(clip),
            "image": up(inputs.balloon(side)),
            "prompt": "a red balloon drifts up over the field",
        },
    )
    await session.menu(
        "menu-animate",
        "Animate with Pika (message menu)",
        inputs.flower(side),
        "the daisy sways in a warm breeze",
    )
    await session.click("reroll", "Re-roll", "reroll", ["text"], {})
    await session.click(
        "remix",
        "Remix",
        "remix",
        ["text"],
        {"prompt": "a red fox leaping through autumn leaves", "negative_prompt": "blurry, text"},
    )
    await session.click("continue", "Continue", "continue", ["animate", "menu-animate", "text"], {})


def _prepare(out: Path) -> None:
    """Make the folder, removing what an earlier run wrote there so it shows this run only."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.mp4"):
        if _VIDEO_NAME.fullmatch(old.name):
            old.unlink()
    (out / "transcript.md").unlink(missing_ok=True)


async def run_sandbox(
    out: Path,
    *,
    sizes: SandboxSizes = FULL,
    say: Callable[[str], None] = print,
    fal_script: JobScript | None = None,
    check_body: BodyCheck | None = None,
) -> SandboxReport:
    """Play one job of every mode (and Re-roll, Remix, Continue) through the real bot against a
    fake Discord and the fal emulator; write the videos and transcript.md into `out`.

    `fal_script` replaces how every emulated fal job behaves (tests make jobs fail with it);
    `check_body` checks every request body the bot sends (tests pass Discord's OpenAPI check).
    Raises SandboxFailed when a step ends without a video (the transcript is written anyway).
    """
    _prepare(out)
    # Made up for this run: the fakes accept them, and no real account is ever asked for.
    discord_token = "sandbox-" + secrets.token_urlsafe(24)
    fal_key = "sandbox-" + secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="pikabot-sandbox-") as state:
        async with (
            FakeDiscord(check_body=check_body, token=discord_token) as fake,
            FalEmulator(key=None, preview=sizes.preview) as fal,
        ):
            fal.default_script = fal_script or JobScript(
                queue_seconds=sizes.queue_seconds,
                queue_position=2 if sizes.queue_seconds else 0,
                run_seconds=sizes.run_seconds,
            )
            settings = _SandboxSettings(
                discord_token=discord_token,
                fal_key=fal_key,
                database=Path(state) / "pikabot.sqlite3",
                data_dir=Path(state) / "data",
                fal_queue_url=fal.base_url,
                fal_rest_url=fal.base_url,
                discord_api_url=fake.api_url,
                discord_gateway_url=fake.gateway_url,
                progress_interval=1.0,
                daily_allowance=1_000_000,
                guild_daily_budget=1_000_000,
                global_daily_budget=1_000_000,
                log_level="WARNING",
            )
            with fake.patch_discord_py():
                async with (
                    await open_store(settings) as store,
                    httpx.AsyncClient(timeout=30) as http,
                    FalClient(fal.base_url, fal.base_url, fal_key, http=http) as fal_client,
                ):
                    services = build_services(settings, store=store, fal=fal_client, http=http)
                    bot = PikaBot(services, guild_ready_timeout=0.1)
                    session = _Session(fake, bot, out, sizes, say)
                    runner = asyncio.create_task(bot.start(discord_token))
                    try:
                        await _until_ready(bot, runner)
                        say(f"sandbox: the bot is connected to the fake Discord; playing in {out}")
                        await _plays(session, sizes)
                    finally:
                        await bot.close()
                        await asyncio.wait({runner}, timeout=10)
                        problems = tuple(fake.violations)
                        _write(session, problems)
    return SandboxReport(
        out=out,
        transcript=out / "transcript.md",
        steps=tuple(session.steps),
        skipped=tuple(session.skipped),
        discord_problems=problems,
    )


async def _until_ready(bot: PikaBot, runner: asyncio.Task[None]) -> None:
    ready = asyncio.ensure_future(bot.wait_until_ready())
    done, _ = await asyncio.wait({ready, runner}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if runner in done:
            runner.result()
        raise SandboxFailed("the bot did not connect to the fake Discord within 30 s")


def _write(session: _Session, problems: tuple[str, ...]) -> None:
    footer = ["## Files", ""]
    footer += [f"- `{s.video.name}`: {s.title} (job `{s.job_id}`)" for s in session.steps]
    footer.append("- `inputs/`: the pictures and the clip you uploaded")
    if problems:
        footer += ["", "## Discord API problems", ""]
        footer += [f"- {p}" for p in problems]
    (session.out / "transcript.md").write_text(session.transcript.render(footer), encoding="utf-8")


def main(out: Path, *, small: bool = False) -> int:
    """The `sandbox` command: run, name the folder; exit status 1 if a step failed."""
    where = out.resolve()
    # discord.py's only warning here is that voice is unsupported; the bot never uses voice.
    logging.getLogger("discord.client").setLevel(logging.ERROR)
    try:
        report = asyncio.run(run_sandbox(where, sizes=SMALL if small else FULL))
    except SandboxFailed as failure:
        print(f"sandbox: {failure}", file=sys.stderr)
        print(
            f"sandbox: what happened up to there is in {where / 'transcript.md'}", file=sys.stderr
        )
        return 1
    for note in report.discord_problems:
        print(f"sandbox: warning: a request would not be valid for Discord: {note}")
    for note in report.skipped:
        print(f"sandbox: note: {note}")
    print(f"sandbox: {len(report.steps)} videos and transcript.md are in {where}")
    return 0
