"""Validated Pika requests, one pydantic model per mode, that round-trip through JSON."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.pika.catalogue import (
    ASPECT_RATIOS,
    DEFAULT_MODEL,
    DURATIONS,
    EFFECTS,
    ENDPOINTS,
    FRAMES_IMAGES_MAX,
    FRAMES_IMAGES_MIN,
    FRAMES_TOTAL_MAX_S,
    INGREDIENTS_MODES,
    MODELS,
    RESOLUTIONS,
    SCENES_IMAGES_MAX,
    SCENES_IMAGES_MIN,
    SEED_MAX,
    TRANSITION_DEFAULT_S,
    Endpoint,
    Mode,
    endpoint_for,
    or_list,
)
from bot.pika.refusals import (
    choice,
    invalid_from,
    member_text,
    refuse,
    shown,
    whole_number,
)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputRef(_Frozen):
    """A file input by content: its bytes' sha256 and type; its URL is decided at submit time."""

    sha256: str
    content_type: str

    @field_validator("sha256", mode="before")
    @classmethod
    def _sha256(cls, value: object) -> object:
        if isinstance(value, str) and _SHA256.fullmatch(value.strip().lower()):
            return value.strip().lower()
        raise refuse("A file reference must carry the 64 hex digits of its sha256.", "sha256")

    @field_validator("content_type", mode="before")
    @classmethod
    def _content_type(cls, value: object) -> object:
        if isinstance(value, str):
            bare = value.split(";", 1)[0].strip().lower()
            if _CONTENT_TYPE.fullmatch(bare):
                return bare
        raise refuse(
            f"A file's type must look like image/png or video/mp4, not {shown(value)}.",
            "content_type",
        )

    @property
    def kind(self) -> str:
        """The major type: "image", "video", …"""
        return self.content_type.split("/", 1)[0]


class Transition(_Frozen):
    """One keyframe-to-keyframe transition of a frames request."""

    duration: int = TRANSITION_DEFAULT_S
    prompt: str | None = None

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> int:
        rule = "a whole number of seconds, at least 1"
        seconds = whole_number("Each of durations", value, rule)
        if seconds < 1:
            raise refuse(f"Each of durations must be {rule}; {seconds} isn't.", "durations")
        return seconds

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, value: object) -> str | None:
        return member_text("prompts", value, required=False, label="Each of prompts")


_MAIN_PROMPTS = ("prompt", "negative_prompt", "region")
_IMAGE_TYPES = "a PNG, JPEG or WebP image"
_VIDEO_TYPES = "an MP4, MOV or WebM video"


class _Request(_Frozen):
    """What every request shares: checks of text, choices and seed, and endpoint-wide rules."""

    mode: Mode

    @field_validator(*_MAIN_PROMPTS, mode="before", check_fields=False)
    @classmethod
    def _texts(cls, value: object, info: ValidationInfo) -> str | None:
        name = str(info.field_name)
        return member_text(name, value, required=cls.model_fields[name].is_required())

    @field_validator("aspect_ratio", mode="before", check_fields=False)
    @classmethod
    def _aspect_ratio(cls, value: object) -> str | None:
        if value is None:
            return None
        return choice("aspect_ratio", value, tuple(c.value for c in ASPECT_RATIOS))

    @field_validator("resolution", mode="before", check_fields=False)
    @classmethod
    def _resolution(cls, value: object) -> str | None:
        if value is None:
            return None
        return choice("resolution", value, tuple(c.value for c in RESOLUTIONS))

    @field_validator("duration", mode="before", check_fields=False)
    @classmethod
    def _duration(cls, value: object) -> int | None:
        if value is None:
            return None
        allowed = tuple(c.value for c in DURATIONS)
        rule = f"{or_list(allowed)} seconds"
        seconds = whole_number("duration", value, rule)
        if seconds not in allowed:
            raise refuse(f"duration must be {rule}; {seconds} isn't available.", "duration")
        return seconds

    @field_validator("seed", mode="before", check_fields=False)
    @classmethod
    def _seed(cls, value: object) -> int | None:
        if value is None:
            return None
        rule = f"a whole number from 0 to {SEED_MAX}"
        seed = whole_number("seed", value, rule)
        if not 0 <= seed <= SEED_MAX:
            raise refuse(f"seed must be {rule}; {shown(seed)} is out of range.", "seed")
        return seed

    @field_validator("model", mode="before", check_fields=False)
    @classmethod
    def _model(cls, value: object) -> str:
        mode = Mode(cls.model_fields["mode"].default)
        if value is None:
            return DEFAULT_MODEL[mode]
        hint = f" (or leave model out for {DEFAULT_MODEL[mode]})"
        return choice("model", value, MODELS[mode], hint)

    @field_validator("image", mode="before", check_fields=False)
    @classmethod
    def _image(cls, value: object) -> object:
        if value is None and cls.model_fields["image"].is_required():
            raise refuse(f"/pika {cls.model_fields['mode'].default} needs an image.", "image")
        return value

    @field_validator("video", mode="before", check_fields=False)
    @classmethod
    def _video(cls, value: object) -> object:
        if value is None:
            mode = cls.model_fields["mode"].default
            raise refuse(f"/pika {mode} needs {_VIDEO_TYPES}.", "video")
        return value

    @model_validator(mode="after")
    def _endpoint_rules(self) -> _Request:
        endpoint = self.endpoint
        resolution = getattr(self, "resolution", None)
        if resolution is not None and resolution not in endpoint.resolutions:
            raise refuse(_resolution_refusal(endpoint, resolution), "resolution")
        if getattr(self, "aspect_ratio", None) is not None and not endpoint.accepts_aspect_ratio:
            raise refuse(_aspect_ratio_refusal(endpoint), "aspect_ratio")
        for option, ref in self._named_inputs():
            want, words = ("video", _VIDEO_TYPES) if option == "video" else ("image", _IMAGE_TYPES)
            if ref.kind != want:
                raise refuse(f"{option} must be {words}, not {ref.content_type}.", option)
        return self

    def _named_inputs(self) -> list[tuple[str, InputRef]]:
        """Each input file with the option it came from, in the order fal receives them."""
        return []

    @property
    def endpoint(self) -> Endpoint:
        """The fal endpoint this request goes to."""
        return endpoint_for(self.mode, getattr(self, "model", None))

    @property
    def inputs(self) -> list[InputRef]:
        """The input files, in order."""
        return [ref for _, ref in self._named_inputs()]

    @property
    def effective_resolution(self) -> str | None:
        """The resolution fal will make (its default when left out); None when it has none."""
        chosen: str | None = getattr(self, "resolution", None)
        return chosen or self.endpoint.default_resolution

    @property
    def effective_duration(self) -> int | None:
        """The length in seconds fal will make, where it is known before the run."""
        if not self.endpoint.accepts_duration:
            return None
        chosen: int | None = getattr(self, "duration", None)
        return chosen or self.endpoint.default_duration


def _resolution_refusal(endpoint: Endpoint, resolution: str) -> str:
    makers = [e for e in ENDPOINTS if resolution in e.resolutions]
    same_mode = [e.model for e in makers if e.mode is endpoint.mode]
    made = or_list(endpoint.resolutions)
    if same_mode:
        return (
            f"{resolution} is only available with {endpoint.mode.value} model "
            f"{or_list(same_mode)}; model {endpoint.model} makes {made}. "
            f"Pick {made}, or choose model {or_list(same_mode)}."
        )
    others = or_list(e.title for e in makers)
    return (
        f"{resolution} is only available with {others}; "
        f"/pika {endpoint.mode.value} makes {made}. Pick {made}, or leave resolution out."
    )


def _aspect_ratio_refusal(endpoint: Endpoint) -> str:
    same_mode = [e.model for e in ENDPOINTS if e.mode is endpoint.mode and e.accepts_aspect_ratio]
    if same_mode:
        return (
            f"aspect_ratio isn't available with {endpoint.mode.value} model {endpoint.model}; "
            f"pick model {or_list(same_mode)} for aspect ratios, or leave aspect_ratio out."
        )
    return (
        f"aspect_ratio isn't available with /pika {endpoint.mode.value}: "
        "the video takes the shape of its input. Leave aspect_ratio out."
    )


def check_image_count(mode: Mode, count: int) -> None:
    """Refuse a frames or scenes request with too few or too many images."""
    low, high = {
        Mode.FRAMES: (FRAMES_IMAGES_MIN, FRAMES_IMAGES_MAX),
        Mode.SCENES: (SCENES_IMAGES_MIN, SCENES_IMAGES_MAX),
    }[mode]
    if not low <= count <= high:
        raise refuse(
            f"/pika {mode.value} takes {low} to {high} images (image1 to image{high}); "
            f"you gave {count}.",
            "images",
        )


class TextRequest(_Request):
    """A video from a prompt alone."""

    mode: Literal[Mode.TEXT] = Mode.TEXT
    prompt: str
    negative_prompt: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    duration: int | None = None
    seed: int | None = None
    model: str = DEFAULT_MODEL[Mode.TEXT]


class AnimateRequest(_Request):
    """A video that starts from an image."""

    mode: Literal[Mode.ANIMATE] = Mode.ANIMATE
    image: InputRef
    prompt: str
    negative_prompt: str | None = None
    resolution: str | None = None
    duration: int | None = None
    seed: int | None = None
    model: str = DEFAULT_MODEL[Mode.ANIMATE]

    def _named_inputs(self) -> list[tuple[str, InputRef]]:
        return [("image", self.image)]


class FramesRequest(_Request):
    """Transitions between 2 to 5 keyframe images."""

    mode: Literal[Mode.FRAMES] = Mode.FRAMES
    images: tuple[InputRef, ...]
    prompt: str | None = None
    transitions: tuple[Transition, ...] | None = None
    negative_prompt: str | None = None
    resolution: str | None = None
    seed: int | None = None

    @model_validator(mode="after")
    def _frames_rules(self) -> FramesRequest:
        check_image_count(self.mode, len(self.images))
        if self.transitions is not None:
            needed = len(self.images) - 1
            if len(self.transitions) != needed:
                raise refuse(
                    f"{len(self.images)} images make {needed} transitions, "
                    f"but {len(self.transitions)} were given; give {needed}.",
                    "transitions",
                )
        check_total_duration(self.total_duration)
        return self

    def _named_inputs(self) -> list[tuple[str, InputRef]]:
        return [(f"image{i}", ref) for i, ref in enumerate(self.images, start=1)]

    @property
    def effective_transitions(self) -> tuple[Transition, ...]:
        """The transitions fal will make: the given ones, or its defaults."""
        if self.transitions is not None:
            return self.transitions
        return tuple(Transition() for _ in range(len(self.images) - 1))

    @property
    def total_duration(self) -> int:
        """Seconds of video: the sum of the transitions."""
        return sum(t.duration for t in self.effective_transitions)

    @property
    def effective_duration(self) -> int | None:
        return self.total_duration


def check_total_duration(total: int) -> None:
    """Refuse frames transitions that add up to more than fal allows."""
    if total > FRAMES_TOTAL_MAX_S:
        raise refuse(
            f"The transitions add up to {total} s; the total may be at most "
            f"{FRAMES_TOTAL_MAX_S} s. Shorten some durations.",
            "durations",
        )


class ScenesRequest(_Request):
    """One video that brings together the subjects of 1 to 6 images."""

    mode: Literal[Mode.SCENES] = Mode.SCENES
    images: tuple[InputRef, ...]
    prompt: str
    ingredients_mode: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    duration: int | None = None
    negative_prompt: str | None = None
    seed: int | None = None

    @field_validator("ingredients_mode", mode="before")
    @classmethod
    def _ingredients_mode(cls, value: object) -> str | None:
        if value is None:
            return None
        return choice("ingredients_mode", value, tuple(c.value for c in INGREDIENTS_MODES))

    @model_validator(mode="after")
    def _scenes_rules(self) -> ScenesRequest:
        check_image_count(self.mode, len(self.images))
        return self

    def _named_inputs(self) -> list[tuple[str, InputRef]]:
        return [(f"image{i}", ref) for i, ref in enumerate(self.images, start=1)]


class EffectRequest(_Request):
    """One of Pika's effects applied to an image."""

    mode: Literal[Mode.EFFECT] = Mode.EFFECT
    image: InputRef
    effect: str
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None

    @field_validator("effect", mode="before")
    @classmethod
    def _effect(cls, value: object) -> str:
        if value is None:
            raise refuse(
                f"/pika effect needs an effect; pick {or_list(c.value for c in EFFECTS)}.",
                "effect",
            )
        return choice("effect", value, tuple(c.value for c in EFFECTS))

    def _named_inputs(self) -> list[tuple[str, InputRef]]:
        return [("image", self.image)]


class SwapRequest(_Request):
    """Something in a video replaced by an image or a description."""

    mode: Literal[Mode.SWAP] = Mode.SWAP
    video: InputRef
    image: InputRef | None = None
    region: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None

    @model_validator(mode="after")
    def _swap_rules(self) -> SwapRequest:
        if self.image is None and self.prompt is None:
            raise refuse(
                "/pika swap needs something to put in: attach an image or write a prompt "
                "(or both). region may name what to replace.",
                "image",
            )
        return self

    def _named_inputs(self) -> list[tuple[str, InputRef]]:
        named = [("video", self.video)]
        if self.image is not None:
            named.append(("image", self.image))
        return named


class AddRequest(_Request):
    """The subject of an image added into a video."""

    mode: Literal[Mode.ADD] = Mode.ADD
    video: InputRef
    image: InputRef
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None

    def _named_inputs(self) -> list[tuple[str, InputRef]]:
        return [("video", self.video), ("image", self.image)]


PikaRequest = Annotated[
    TextRequest
    | AnimateRequest
    | FramesRequest
    | ScenesRequest
    | EffectRequest
    | SwapRequest
    | AddRequest,
    Field(discriminator="mode"),
]

REQUEST_TYPES: dict[Mode, type[_Request]] = {
    Mode.TEXT: TextRequest,
    Mode.ANIMATE: AnimateRequest,
    Mode.FRAMES: FramesRequest,
    Mode.SCENES: ScenesRequest,
    Mode.EFFECT: EffectRequest,
    Mode.SWAP: SwapRequest,
    Mode.ADD: AddRequest,
}

_ADAPTER: TypeAdapter[PikaRequest] = TypeAdapter(PikaRequest)


def parse_request(data: str | bytes | Mapping[str, Any]) -> PikaRequest:
    """Rebuild a request from its JSON (e.g. a stored job), checking it like a new one."""
    try:
        if isinstance(data, str | bytes):
            return _ADAPTER.validate_json(data)
        return _ADAPTER.validate_python(dict(data))
    except ValidationError as error:
        raise invalid_from(error) from None


def dump_request(request: PikaRequest) -> str:
    """The request as JSON, the form it is stored in; `parse_request` reads it back."""
    return request.model_dump_json()


def revise(request: PikaRequest, **changes: object) -> PikaRequest:
    """A copy with some fields changed (a new seed, an edited prompt), checked like a new one."""
    data = request.model_dump()
    data.update(changes)
    try:
        return type(request).model_validate(data)
    except ValidationError as error:
        raise invalid_from(error) from None
