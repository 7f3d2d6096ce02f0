"""Turns a command's raw option values, as Discord gives them, into a validated request."""

from __future__ import annotations

from typing import cast

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from bot.pika.catalogue import (
    FRAMES_IMAGES_MAX,
    SCENES_IMAGES_MAX,
    TRANSITION_DEFAULT_S,
    Mode,
    mode_of,
    or_list,
)
from bot.pika.errors import InvalidRequest
from bot.pika.refusals import clean_text, invalid_from, refuse, shown
from bot.pika.requests import (
    REQUEST_TYPES,
    InputRef,
    PikaRequest,
    Transition,
    check_image_count,
    check_total_duration,
)

_COMMON = ("negative_prompt", "seed")

# The options of each `/pika` command, by their public names (PRODUCT.md §1).
COMMAND_OPTIONS: dict[Mode, tuple[str, ...]] = {
    Mode.TEXT: ("prompt", *_COMMON, "aspect_ratio", "resolution", "duration", "model"),
    Mode.ANIMATE: ("image", "prompt", *_COMMON, "resolution", "duration", "model"),
    Mode.FRAMES: (
        *(f"image{i}" for i in range(1, FRAMES_IMAGES_MAX + 1)),
        "prompt",
        "durations",
        "prompts",
        *_COMMON,
        "resolution",
    ),
    Mode.SCENES: (
        *(f"image{i}" for i in range(1, SCENES_IMAGES_MAX + 1)),
        "prompt",
        "ingredients_mode",
        "aspect_ratio",
        "resolution",
        "duration",
        *_COMMON,
    ),
    Mode.EFFECT: ("image", "effect", "prompt", *_COMMON),
    Mode.SWAP: ("video", "image", "region", "prompt", *_COMMON),
    Mode.ADD: ("video", "image", "prompt", *_COMMON),
}

_FILE_OPTIONS = frozenset(
    {"image", "video"}
    | {f"image{i}" for i in range(1, max(FRAMES_IMAGES_MAX, SCENES_IMAGES_MAX) + 1)}
)
_PLACEHOLDER_SHA256 = "0" * 64


def build_request(mode: Mode | str, /, **options: object) -> PikaRequest:
    """A validated request from raw option values, or InvalidRequest with a readable message.

    Values are what Discord gives: strings, ints, and `InputRef` for attachments. Frames take
    `durations` as a comma list ("5,5,10") and `prompts` as a "|" list, one per transition;
    an empty entry of `prompts` keeps the main prompt for that transition. Options left out
    or None stay unset, so fal's defaults apply, except `model`, which the bot chooses.
    """
    mode = mode_of(mode)
    allowed = COMMAND_OPTIONS[mode]
    for name, value in options.items():
        if value is not None and name not in allowed:
            raise InvalidRequest(
                f"/pika {mode.value} has no option {name}; its options are {or_list(allowed)}.",
                option=name,
            )
    fields: dict[str, object] = {name: options.get(name) for name in allowed}
    try:
        if mode in (Mode.FRAMES, Mode.SCENES):
            # Images keep their option order; a skipped optional slot just closes up.
            slots = [fields.pop(n) for n in allowed if n.startswith("image")]
            images = [ref for ref in slots if ref is not None]
            fields["images"] = images
        if mode is Mode.FRAMES:
            # Counted first: the durations and prompts are judged against it.
            check_image_count(mode, len(images))
            fields["transitions"] = _transitions(
                len(images) - 1, fields.pop("durations"), fields.pop("prompts")
            )
        return cast(PikaRequest, REQUEST_TYPES[mode].model_validate(fields))
    except PydanticCustomError as error:
        raise InvalidRequest(error.message(), option=_option(error)) from None
    except ValidationError as error:
        raise invalid_from(error) from None


def check_options(mode: Mode | str, /, **options: object) -> None:
    """Every check of `build_request` before the files' bytes are known.

    A command runs this first (before deferring); any non-None value stands in for a file, e.g.
    the Discord attachment, and its type is then checked later, by its bytes.
    """
    stand_ins: dict[str, object] = {}
    for name, value in options.items():
        if name in _FILE_OPTIONS and value is not None and not isinstance(value, InputRef):
            kind = "video/mp4" if name == "video" else "image/png"
            value = InputRef(sha256=_PLACEHOLDER_SHA256, content_type=kind)
        stand_ins[name] = value
    build_request(mode, **stand_ins)


def _option(error: PydanticCustomError) -> str | None:
    option = (error.context or {}).get("option")
    return None if option is None else str(option)


def _transitions(count: int, durations: object, prompts: object) -> list[Transition] | None:
    """The transitions from the `durations` and `prompts` options; None when both are left out."""
    seconds = _durations(count, durations)
    texts = _prompts(count, prompts)
    if seconds is None and texts is None:
        return None
    seconds = seconds or [TRANSITION_DEFAULT_S] * count
    texts = texts or [None] * count
    return [Transition(duration=s, prompt=p) for s, p in zip(seconds, texts, strict=True)]


def _durations(count: int, raw: object) -> list[int] | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    example = ",".join([str(TRANSITION_DEFAULT_S)] * count)
    rule = f"whole seconds of at least 1, separated by commas (e.g. {example})"
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        raise refuse(f"durations must be {rule}.", "durations")
    parts = [part.strip() for part in raw.split(",")]
    seconds: list[int] = []
    for part in parts:
        if not part.isascii() or not part.isdigit() or int(part) < 1:
            raise refuse(f"durations must be {rule}; {shown(part)} isn't one.", "durations")
        seconds.append(int(part))
    if len(seconds) != count:
        raise refuse(
            f"durations has {len(seconds)} value{'s' * (len(seconds) != 1)}, but "
            f"{count + 1} images make {count} transition{'s' * (count != 1)}; "
            f"give {count} (e.g. {example}), or leave durations out for "
            f"{TRANSITION_DEFAULT_S} s each.",
            "durations",
        )
    check_total_duration(sum(seconds))
    return seconds


def _prompts(count: int, raw: object) -> list[str | None] | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise refuse("prompts must be text, one prompt per transition separated by |.", "prompts")
    if not clean_text(raw):
        return None
    parts = raw.split("|")
    if len(parts) != count:
        raise refuse(
            f"prompts has {len(parts)} entr{'ies' if len(parts) != 1 else 'y'}, but "
            f"{count + 1} images make {count} transition{'s' * (count != 1)}; give {count}, "
            "separated by | (an empty entry keeps the main prompt for that transition).",
            "prompts",
        )
    # Each entry is checked (trimmed, length) by Transition itself.
    return [part if clean_text(part) else None for part in parts]
