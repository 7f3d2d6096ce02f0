"""The bad-input corpus as data: each case is a command, how to build its options, and what must
happen (a refusal naming the problem and what is allowed, or a job that runs on cleaned text)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.pika import clean_text
from tests.corpus import inputs
from tests.e2e.conftest import World

Build = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Refusal:
    """Refused with an ephemeral message holding every one of `says`; `before_defer` when the
    options or what Discord declares of the files suffice (no download), else after the bytes."""

    says: tuple[str, ...]
    before_defer: bool


@dataclass(frozen=True)
class DiscordRefusal:
    """The synced command definition makes Discord refuse it (a required option, a choice list, a
    min/max or max_length); if it arrived anyway, the bot's own check says every one of `says`."""

    says: tuple[str, ...]


@dataclass(frozen=True)
class RunsCleaned:
    """The job runs; fal receives these body fields exactly (the text after clean_text)."""

    fal: dict[str, str]


Expect = Refusal | DiscordRefusal | RunsCleaned


@dataclass(frozen=True)
class Case:
    id: str
    command: str
    options: Build
    expect: Expect


def image(w: World, data: bytes | None = None, name: str = "in.png", **kw: Any) -> Any:
    """An image option: a good 512 px PNG unless `data` says otherwise."""
    return w.attach(inputs.png() if data is None else data, name, **kw)


def video(w: World, data: bytes | None = None, name: str = "clip.mp4", **kw: Any) -> Any:
    """A video option: a good one-second MP4 unless `data` says otherwise."""
    return w.attach(inputs.clip() if data is None else data, name, **kw)


def animate(data: bytes, name: str = "in.png", prompt: str = "go", **kw: Any) -> Build:
    """/pika animate of one (bad) image."""
    return lambda w: {"image": image(w, data, name, **kw), "prompt": prompt}


def swap(data: bytes, name: str = "clip.mp4", **kw: Any) -> Build:
    """/pika swap of one (bad) video."""
    return lambda w: {"video": video(w, data, name, **kw), "prompt": "a red car"}


def frames(count: int, **options: Any) -> Build:
    """/pika frames with `count` good images and these options."""

    def build(w: World) -> dict[str, Any]:
        return {**{f"image{n}": image(w) for n in range(1, count + 1)}, **options}

    return build


def text(prompt: str, **options: Any) -> Build:
    return lambda w: {"prompt": prompt, **options}


IMAGE_TYPES = "PNG, JPEG or WebP"
VIDEO_TYPES = "MP4, MOV or WebM"
DAMAGED = "damaged or incomplete"


def before(*says: str) -> Refusal:
    return Refusal(says, before_defer=True)


def after(*says: str) -> Refusal:
    return Refusal(says, before_defer=False)


def cleaned(**fields: str) -> RunsCleaned:
    return RunsCleaned({name: clean_text(value) for name, value in fields.items()})


ESCAPES = "a red boat\x1b[2J on a calm\x07 sea\x00"
RTL_OVERRIDE = "a cat \u202eyks eht ni\u202c flying"
ISOLATES = "\u2067a dog\u2069 running \u2066fast\u2069"
C1_AND_CRLF = "a fox\r\nin the snow\x85\x9b"
MARKDOWN = "**bold** __boat__ ~~sea~~ `code` ||spoiler|| [click](https://example.com) # big"


def mentions(w: World) -> str:
    """A prompt that names a member, a role, @everyone and @here."""
    return f"<@{w.fake.owner.id}> <@&{w.fake.guild.id}> @everyone @here a boat"


CASES: tuple[Case, ...] = (
    # What Discord declares of a file is enough: refused before the defer, nothing downloaded.
    Case(
        "svg-declared", "pika animate", animate(inputs.SVG, "logo.svg"), before("SVG", IMAGE_TYPES)
    ),
    Case(
        "animated-gif-declared",
        "pika animate",
        animate(inputs.animated_gif(), "anim.gif"),
        before("GIF", IMAGE_TYPES),
    ),
    Case(
        "html-declared",
        "pika effect",
        lambda w: {"image": image(w, inputs.HTML, "page.html"), "effect": "Melt"},
        before("text/html", IMAGE_TYPES),
    ),
    Case(
        "pixel-bomb-declared",
        "pika animate",
        animate(inputs.pixel_bomb(), width=60_000, height=60_000),
        before("60000×60000", "at most"),
    ),
    Case(
        "one-pixel-declared",
        "pika animate",
        animate(inputs.png(1, 1), width=1, height=1),
        before("1×1", "at least 256 px"),
    ),
    Case(
        "hundred-px-jpeg-declared",
        "pika effect",
        lambda w: {
            "image": image(w, inputs.jpeg(100, 100), "s.jpg", width=100, height=100),
            "effect": "Poke",
        },
        before("100×100", "at least 256 px"),
    ),
    Case(
        "thirty-mb-image",
        "pika animate",
        animate(inputs.thirty_mb_image()),
        before("28.6 MiB", "at most 20 MiB"),
    ),
    Case("empty-image", "pika animate", animate(b""), before("empty", IMAGE_TYPES)),
    Case("empty-video", "pika swap", swap(b""), before("empty", VIDEO_TYPES)),
    Case(
        "image-declared-as-video",
        "pika add",
        lambda w: {"video": image(w, inputs.png(), "clip.png"), "image": image(w)},
        before("video", VIDEO_TYPES),
    ),
    # Option values: refused before the defer.
    Case(
        "animate-prompt-only-spaces",
        "pika animate",
        animate(inputs.png(), prompt="     "),
        before("prompt is empty", "1,500"),
    ),
    Case(
        "prompt-only-tabs-and-newlines",
        "pika text",
        text("\n\t \n\t"),
        before("prompt is empty", "1,500"),
    ),
    Case(
        "prompt-only-control-characters",
        "pika text",
        text("\x00\x07\x1b\u202e\u2066\x7f"),
        before("prompt is empty", "1,500"),
    ),
    Case(
        "negative-prompt-1501",
        "pika animate",
        lambda w: {"image": image(w), "prompt": "go", "negative_prompt": "n" * 1501},
        before("negative_prompt", "1,501", "1,500"),
    ),
    Case(
        "swap-prompt-1501",
        "pika swap",
        lambda w: {"video": video(w), "prompt": "é" * 1501},
        before("1,501", "1,500"),
    ),
    Case(
        "swap-prompt-only-spaces",
        "pika swap",
        lambda w: {"video": video(w), "prompt": "   "},
        before("image", "prompt"),
    ),
    Case(
        "durations-total-26",
        "pika frames",
        frames(5, durations="7,7,7,5"),
        before("26 s", "at most 25 s"),
    ),
    Case(
        "one-duration-of-26",
        "pika frames",
        frames(2, durations="26"),
        before("26 s", "at most 25 s"),
    ),
    Case(
        "durations-with-0",
        "pika frames",
        frames(3, durations="0,5"),
        before('"0"', "whole seconds of at least 1"),
    ),
    Case(
        "durations-with-minus-1",
        "pika frames",
        frames(3, durations="-1,5"),
        before('"-1"', "whole seconds of at least 1"),
    ),
    Case(
        "durations-with-3.5",
        "pika frames",
        frames(3, durations="5,3.5"),
        before('"3.5"', "whole seconds"),
    ),
    Case(
        "durations-with-letters",
        "pika frames",
        frames(3, durations="five,5"),
        before('"five"', "whole seconds"),
    ),
    Case(
        "durations-with-an-empty-entry",
        "pika frames",
        frames(4, durations="5,,5"),
        before("whole seconds", "separated by commas"),
    ),
    # The bytes: refused after the defer (the deferred reply is deleted).
    Case(
        "text-renamed-png",
        "pika animate",
        animate(inputs.TEXT, "photo.png"),
        after("text file", IMAGE_TYPES),
    ),
    Case(
        "html-renamed-jpg",
        "pika animate",
        animate(inputs.HTML, "photo.jpg"),
        after("text file", IMAGE_TYPES),
    ),
    Case(
        "zip-renamed-png",
        "pika animate",
        animate(inputs.ZIP, "photo.png"),
        after("ZIP", IMAGE_TYPES),
    ),
    Case(
        "pdf-renamed-jpg",
        "pika effect",
        lambda w: {"image": image(w, inputs.PDF, "photo.jpg"), "effect": "Melt"},
        after("PDF", IMAGE_TYPES),
    ),
    Case(
        "truncated-png",
        "pika animate",
        animate(inputs.truncated(inputs.png())),
        after(f"{DAMAGED} PNG", IMAGE_TYPES),
    ),
    Case(
        "png-header-only",
        "pika animate",
        animate(inputs.png()[:40]),
        after(f"{DAMAGED} PNG", IMAGE_TYPES),
    ),
    Case(
        "corrupt-png",
        "pika animate",
        animate(inputs.scrambled(inputs.png(), 60)),
        after(f"{DAMAGED} PNG", IMAGE_TYPES),
    ),
    Case(
        "truncated-jpeg",
        "pika animate",
        animate(inputs.truncated(inputs.jpeg()), "p.jpg"),
        after(f"{DAMAGED} JPEG", IMAGE_TYPES),
    ),
    Case(
        "corrupt-jpeg",
        "pika animate",
        animate(inputs.scrambled(inputs.jpeg(), 200), "p.jpg"),
        after(f"{DAMAGED} JPEG", IMAGE_TYPES),
    ),
    Case(
        "svg-renamed-png",
        "pika animate",
        animate(inputs.SVG, "logo.png"),
        after("SVG", IMAGE_TYPES),
    ),
    Case(
        "animated-gif-renamed-png",
        "pika animate",
        animate(inputs.animated_gif(), "a.png"),
        after("GIF", IMAGE_TYPES),
    ),
    Case(
        "animated-webp",
        "pika animate",
        animate(inputs.animated_webp(), "a.webp"),
        after("animated WebP", "still pictures"),
    ),
    Case(
        "pixel-bomb", "pika animate", animate(inputs.pixel_bomb()), after("60000×60000", "at most")
    ),
    Case("one-pixel", "pika animate", animate(inputs.png(1, 1)), after("1×1", "at least 256 px")),
    Case(
        "hundred-px",
        "pika effect",
        lambda w: {"image": image(w, inputs.png(100, 100)), "effect": "Melt"},
        after("100×100", "at least 256 px"),
    ),
    Case(
        "second-keyframe-truncated",
        "pika frames",
        lambda w: {
            "image1": image(w),
            "image2": image(w, inputs.truncated(inputs.jpeg()), "b.jpg"),
        },
        after("image2", DAMAGED, IMAGE_TYPES),
    ),
    Case(
        "third-ingredient-gif",
        "pika scenes",
        lambda w: {
            "image1": image(w),
            "image2": image(w),
            "image3": image(w, inputs.animated_gif(), "c.png"),
            "prompt": "a picnic",
        },
        after("image3", "GIF", IMAGE_TYPES),
    ),
    Case(
        "video-that-is-an-image",
        "pika swap",
        swap(inputs.png()),
        after("video", "PNG", VIDEO_TYPES),
    ),
    Case(
        "two-minute-video",
        "pika swap",
        swap(inputs.two_minute_video()),
        after("2 min", "at most 30 s"),
    ),
    Case(
        "truncated-mp4",
        "pika swap",
        swap(inputs.truncated(inputs.clip())),
        after(f"{DAMAGED} MP4", VIDEO_TYPES),
    ),
    Case(
        "corrupt-mp4",
        "pika add",
        lambda w: {"video": video(w, inputs.scrambled(inputs.clip(), 100)), "image": image(w)},
        after(f"{DAMAGED} MP4", VIDEO_TYPES),
    ),
    Case(
        "video-grows-mid-stream",
        "pika swap",
        swap(inputs.growing_video()),
        after("4160×64 px", "at most 4096 px"),
    ),
    Case(
        "mp4-header-only",
        "pika swap",
        swap(inputs.mp4_header_only()),
        after(f"{DAMAGED} MP4", VIDEO_TYPES),
    ),
    # The synced definitions make Discord refuse these; the bot's check refuses them too.
    Case("text-prompt-1501", "pika text", text("p" * 1501), DiscordRefusal(("1,501", "1,500"))),
    Case(
        "animate-prompt-1501",
        "pika animate",
        animate(inputs.png(), prompt="a" * 1501),
        DiscordRefusal(("1,501", "1,500")),
    ),
    Case(
        "frames-with-1-image",
        "pika frames",
        frames(1),
        DiscordRefusal(("2 to 5 images", "you gave 1")),
    ),
    Case("frames-with-6-images", "pika frames", frames(6), DiscordRefusal(("image6", "image5"))),
    Case(
        "scenes-with-7-images",
        "pika scenes",
        lambda w: {**{f"image{n}": image(w) for n in range(1, 8)}, "prompt": "x"},
        DiscordRefusal(("image7", "image6")),
    ),
    Case(
        "seed-minus-1",
        "pika text",
        text("a boat", seed=-1),
        DiscordRefusal(("seed", '"-1"', "0 to 4294967295")),
    ),
    Case(
        "seed-2-to-the-40",
        "pika animate",
        lambda w: {"image": image(w), "prompt": "a", "seed": 2**40},
        DiscordRefusal(("seed", '"1099511627776"', "0 to 4294967295")),
    ),
    Case(
        "unknown-effect",
        "pika effect",
        lambda w: {"image": image(w), "effect": "Vaporise"},
        DiscordRefusal(('"Vaporise"', "Melt", "Ta-da")),
    ),
    Case(
        "duration-7",
        "pika text",
        text("a boat", duration=7),
        DiscordRefusal(("duration", "5 or 10")),
    ),
    Case(
        "480p-for-animate",
        "pika animate",
        lambda w: {"image": image(w), "prompt": "a", "resolution": "480p"},
        DiscordRefusal(("480p", "720p or 1080p")),
    ),
    # Control characters and bidi overrides are removed (bot/pika/requests.py clean_text).
    Case("prompt-with-terminal-escapes", "pika text", text(ESCAPES), cleaned(prompt=ESCAPES)),
    Case("prompt-with-rtl-override", "pika text", text(RTL_OVERRIDE), cleaned(prompt=RTL_OVERRIDE)),
    Case("prompt-with-bidi-isolates", "pika text", text(ISOLATES), cleaned(prompt=ISOLATES)),
    Case(
        "prompt-with-crlf-and-c1-controls",
        "pika text",
        text(C1_AND_CRLF),
        cleaned(prompt=C1_AND_CRLF),
    ),
    Case(
        "negative-prompt-with-rtl-override",
        "pika animate",
        lambda w: {"image": image(w), "prompt": "go", "negative_prompt": "blur\u202e ybur"},
        cleaned(prompt="go", negative_prompt="blur\u202e ybur"),
    ),
    # Mentions and markdown run as they are: the posts ping nobody else and escape markdown.
    Case("prompt-with-mentions", "pika text", lambda w: {"prompt": mentions(w)}, RunsCleaned({})),
    Case("prompt-with-markdown", "pika text", text(MARKDOWN), cleaned(prompt=MARKDOWN)),
)
