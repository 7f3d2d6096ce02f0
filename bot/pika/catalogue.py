"""What Pika offers on fal: the modes, their endpoints, the option choices and the limits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from bot.pika.errors import InvalidRequest

V = TypeVar("V", str, int)


class Mode(StrEnum):
    """A kind of video the bot makes; each is one `/pika` subcommand."""

    TEXT = "text"
    ANIMATE = "animate"
    FRAMES = "frames"
    SCENES = "scenes"
    EFFECT = "effect"
    SWAP = "swap"
    ADD = "add"


@dataclass(frozen=True, slots=True)
class Choice(Generic[V]):
    """One entry of a choice list: the value sent to fal and the name a member sees."""

    value: V
    name: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One fal endpoint and what it accepts; defaults are fal's, used when an option is left out."""

    id: str
    mode: Mode
    model: str
    resolutions: tuple[str, ...] = ()
    default_resolution: str | None = None
    accepts_aspect_ratio: bool = False
    default_aspect_ratio: str | None = None
    accepts_duration: bool = False
    default_duration: int | None = None

    @property
    def title(self) -> str:
        """A short human name, e.g. "text v2.5" or "effect"."""
        if len(MODELS[self.mode]) > 1:
            return f"{self.mode.value} {self.model}"
        return self.mode.value


PROMPT_MAX = 1500
SEED_MAX = 2**32 - 1

FRAMES_IMAGES_MIN = 2
FRAMES_IMAGES_MAX = 5
FRAMES_TOTAL_MAX_S = 25
TRANSITION_DEFAULT_S = 5
SCENES_IMAGES_MIN = 1
SCENES_IMAGES_MAX = 6

# fal's default clip length when `duration` is left out.
DEFAULT_DURATION_S = 5

ASPECT_RATIOS: tuple[Choice[str], ...] = (
    Choice("16:9", "16:9 landscape"),
    Choice("9:16", "9:16 portrait"),
    Choice("1:1", "1:1 square"),
    Choice("4:5", "4:5 portrait"),
    Choice("5:4", "5:4 landscape"),
    Choice("3:2", "3:2 landscape"),
    Choice("2:3", "2:3 portrait"),
)

RESOLUTIONS: tuple[Choice[str], ...] = (
    Choice("480p", "480p (text v2.5 only)"),
    Choice("720p", "720p"),
    Choice("1080p", "1080p"),
)

DURATIONS: tuple[Choice[int], ...] = (
    Choice(5, "5 seconds"),
    Choice(10, "10 seconds"),
)

EFFECTS: tuple[Choice[str], ...] = tuple(
    Choice(name, name)
    for name in (
        "Cake-ify",
        "Crumble",
        "Crush",
        "Decapitate",
        "Deflate",
        "Dissolve",
        "Explode",
        "Eye-pop",
        "Inflate",
        "Levitate",
        "Melt",
        "Peel",
        "Poke",
        "Squish",
        "Ta-da",
        "Tear",
    )
)

INGREDIENTS_MODES: tuple[Choice[str], ...] = (
    Choice("precise", "precise: keep each image as it is"),
    Choice("creative", "creative: blend the images freely"),
)

_ALL_RES = ("480p", "720p", "1080p")
_HD_RES = ("720p", "1080p")


def _text(model: str, path: str) -> Endpoint:
    return Endpoint(
        id=f"fal-ai/pika/{path}/text-to-video",
        mode=Mode.TEXT,
        model=model,
        resolutions=_HD_RES,
        default_resolution="720p",
        accepts_aspect_ratio=True,
        default_aspect_ratio="16:9",
        accepts_duration=True,
        default_duration=DEFAULT_DURATION_S,
    )


def _animate(model: str, path: str) -> Endpoint:
    return Endpoint(
        id=f"fal-ai/pika/{path}/image-to-video",
        mode=Mode.ANIMATE,
        model=model,
        resolutions=_HD_RES,
        default_resolution="720p",
        accepts_duration=True,
        default_duration=DEFAULT_DURATION_S,
    )


# Every Pika endpoint the bot uses, in the order of FAL.md's table; the first endpoint of a mode
# is that mode's default model.
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        id="fal-ai/pika/v2.5/text-to-video",
        mode=Mode.TEXT,
        model="v2.5",
        resolutions=_ALL_RES,
        default_resolution="720p",
        accepts_duration=True,
        default_duration=DEFAULT_DURATION_S,
    ),
    _text("v2.2", "v2.2"),
    _text("v2.1", "v2.1"),
    _text("v2-turbo", "v2/turbo"),
    _animate("v2.2", "v2.2"),
    _animate("v2.1", "v2.1"),
    _animate("v2-turbo", "v2/turbo"),
    Endpoint(
        id="fal-ai/pika/v2.2/pikaframes",
        mode=Mode.FRAMES,
        model="v2.2",
        resolutions=_HD_RES,
        default_resolution="720p",
    ),
    # FAL.md "Seed corrections": pikascenes now defaults to 1080p.
    Endpoint(
        id="fal-ai/pika/v2.2/pikascenes",
        mode=Mode.SCENES,
        model="v2.2",
        resolutions=_HD_RES,
        default_resolution="1080p",
        accepts_aspect_ratio=True,
        default_aspect_ratio="16:9",
        accepts_duration=True,
        default_duration=DEFAULT_DURATION_S,
    ),
    Endpoint(id="fal-ai/pika/v1.5/pikaffects", mode=Mode.EFFECT, model="v1.5"),
    Endpoint(id="fal-ai/pika/v2/pikaswaps", mode=Mode.SWAP, model="v2"),
    Endpoint(id="fal-ai/pika/v2/pikadditions", mode=Mode.ADD, model="v2"),
)

ENDPOINTS_BY_ID: dict[str, Endpoint] = {e.id: e for e in ENDPOINTS}

# Model labels per mode, default first.
MODELS: dict[Mode, tuple[str, ...]] = {
    mode: tuple(e.model for e in ENDPOINTS if e.mode is mode) for mode in Mode
}
DEFAULT_MODEL: dict[Mode, str] = {mode: models[0] for mode, models in MODELS.items()}

_MODEL_NAMES = {"v2-turbo": "v2 Turbo"}

# Discord choice lists for the `model` option; only text and animate offer more than one.
MODEL_CHOICES: dict[Mode, tuple[Choice[str], ...]] = {
    mode: tuple(
        Choice(m, _MODEL_NAMES.get(m, m) + (" (default)" if m == DEFAULT_MODEL[mode] else ""))
        for m in models
    )
    for mode, models in MODELS.items()
}


def resolution_choices(mode: Mode) -> tuple[Choice[str], ...]:
    """The `resolution` choice list of a command: every resolution some model of the mode makes."""
    offered = {r for e in ENDPOINTS if e.mode is mode for r in e.resolutions}
    return tuple(c for c in RESOLUTIONS if c.value in offered)


def mode_of(value: Mode | str) -> Mode:
    """The mode named by a value, or InvalidRequest naming the modes there are."""
    try:
        return Mode(value)
    except ValueError:
        raise InvalidRequest(
            f'There is no mode "{str(value)[:40]}"; pick {or_list(m.value for m in Mode)}.',
            option="mode",
        ) from None


def endpoint_for(mode: Mode | str, model: str | None = None) -> Endpoint:
    """The endpoint of a mode and model label (None: the mode's default model)."""
    mode = mode_of(mode)
    label = DEFAULT_MODEL[mode] if model is None else model
    for endpoint in ENDPOINTS:
        if endpoint.mode is mode and endpoint.model == label:
            return endpoint
    raise InvalidRequest(
        f'model "{label[:40]}" isn\'t available for {mode.value}; '
        f"pick {or_list(MODELS[mode])}, or leave model out for {DEFAULT_MODEL[mode]}.",
        option="model",
    )


def or_list(items: Iterable[object]) -> str:
    """Join words the way a sentence offers alternatives: "a, b or c"."""
    words = [str(i) for i in items]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


__all__ = [
    "ASPECT_RATIOS",
    "DEFAULT_DURATION_S",
    "DEFAULT_MODEL",
    "DURATIONS",
    "EFFECTS",
    "ENDPOINTS",
    "ENDPOINTS_BY_ID",
    "FRAMES_IMAGES_MAX",
    "FRAMES_IMAGES_MIN",
    "FRAMES_TOTAL_MAX_S",
    "INGREDIENTS_MODES",
    "MODELS",
    "MODEL_CHOICES",
    "PROMPT_MAX",
    "RESOLUTIONS",
    "SCENES_IMAGES_MAX",
    "SCENES_IMAGES_MIN",
    "SEED_MAX",
    "TRANSITION_DEFAULT_S",
    "Choice",
    "Endpoint",
    "Mode",
    "endpoint_for",
    "mode_of",
    "or_list",
    "resolution_choices",
]
