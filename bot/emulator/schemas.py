"""The emulator's own input schemas for every Pika endpoint, checked like fal (422 + detail).

Written from FAL.md and the seeds, deliberately independent of bot.pika, so the emulator catches the
bot's mistakes instead of sharing them. Lenient where fal is: unknown fields are ignored (and
recorded), `duration` may be an integer or the string "5"/"10", pikascenes accepts both the
current `image_urls` and the older `images: [{image_url}]`. Strict where a mistake would silently
change the video: a Pika field the endpoint does not take (aspect_ratio on v2.5 text, duration on
pikaframes...) is refused as `extra_forbidden`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["text", "image", "frames", "scenes", "effect", "swap", "add"]

ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")
RESOLUTIONS: tuple[str, ...] = ("720p", "1080p")
RESOLUTIONS_V25: tuple[str, ...] = ("480p", "720p", "1080p")
INGREDIENTS_MODES: tuple[str, ...] = ("precise", "creative")
PIKAFFECTS: tuple[str, ...] = (
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
SEED_MAX = 2**32 - 1
PROMPT_MAX_CHARS = 1500
FRAMES_MIN, FRAMES_MAX = 2, 5
FRAMES_TOTAL_SECONDS_MAX = 25
SCENES_MIN, SCENES_MAX = 1, 6

# Every field any Pika endpoint takes: one of these sent to an endpoint that lacks it is a bug.
PIKA_FIELDS: frozenset[str] = frozenset(
    {
        "prompt",
        "negative_prompt",
        "seed",
        "aspect_ratio",
        "resolution",
        "duration",
        "image_url",
        "image_urls",
        "images",
        "transitions",
        "ingredients_mode",
        "pikaffect",
        "video_url",
        "modify_region",
    }
)


@dataclass(frozen=True)
class EndpointSchema:
    """One endpoint: its mode and which Pika fields it takes."""

    endpoint_id: str
    mode: Mode
    fields: frozenset[str]
    resolutions: tuple[str, ...] = RESOLUTIONS


_COMMON = frozenset({"prompt", "negative_prompt", "seed"})
_TEXT = _COMMON | {"aspect_ratio", "resolution", "duration"}
_IMAGE = _COMMON | {"image_url", "resolution", "duration"}


def _schemas() -> dict[str, EndpointSchema]:
    found: list[EndpointSchema] = [
        EndpointSchema(
            "fal-ai/pika/v2.5/text-to-video",
            "text",
            _COMMON | {"resolution", "duration"},
            RESOLUTIONS_V25,
        ),
        EndpointSchema(
            "fal-ai/pika/v2.2/pikaframes",
            "frames",
            _COMMON | {"image_urls", "transitions", "resolution"},
        ),
        EndpointSchema(
            "fal-ai/pika/v2.2/pikascenes",
            "scenes",
            _TEXT | {"image_urls", "images", "ingredients_mode"},
        ),
        EndpointSchema(
            "fal-ai/pika/v1.5/pikaffects", "effect", _COMMON | {"image_url", "pikaffect"}
        ),
        EndpointSchema(
            "fal-ai/pika/v2/pikaswaps",
            "swap",
            _COMMON | {"video_url", "image_url", "modify_region"},
        ),
        EndpointSchema("fal-ai/pika/v2/pikadditions", "add", _COMMON | {"video_url", "image_url"}),
    ]
    for version in ("v2.2", "v2.1", "v2/turbo"):
        found.append(EndpointSchema(f"fal-ai/pika/{version}/text-to-video", "text", _TEXT))
        found.append(EndpointSchema(f"fal-ai/pika/{version}/image-to-video", "image", _IMAGE))
    return {schema.endpoint_id: schema for schema in found}


ENDPOINTS: Mapping[str, EndpointSchema] = _schemas()


@dataclass(frozen=True)
class Transition:
    """One pikaframes transition: its length in seconds and its prompt, if any."""

    duration: int
    prompt: str | None


@dataclass
class JobInput:
    """A validated body, shaped for the renderer, with notes on which accepted forms were sent."""

    endpoint_id: str
    mode: Mode
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    duration: int | None = None
    image_urls: list[str] = field(default_factory=list)
    video_url: str | None = None
    pikaffect: str | None = None
    modify_region: str | None = None
    ingredients_mode: str | None = None
    transitions: list[Transition] = field(default_factory=list)
    # Which of the accepted variants the caller used, so tests can assert on them.
    scenes_field: str | None = None
    duration_type: str | None = None
    ignored_fields: list[str] = field(default_factory=list)


class InputInvalid(Exception):
    """The body does not fit the endpoint's schema; `detail` is fal's 422 list."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        self.detail = detail
        super().__init__("; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in detail))


class _Checker:
    """Collects every problem in one body, like pydantic does, instead of stopping at the first."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.detail: list[dict[str, Any]] = []

    def error(self, loc: list[str | int], msg: str, kind: str, value: Any = None) -> None:
        entry: dict[str, Any] = {"loc": ["body", *loc], "msg": msg, "type": kind}
        if value is not None:
            entry["input"] = value
        self.detail.append(entry)

    def string(
        self,
        name: str,
        *,
        required: bool = False,
        max_chars: int | None = None,
        non_empty: bool = False,
    ) -> str | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.error([name], "Field required", "missing")
            return None
        if not isinstance(value, str):
            self.error([name], "Input should be a valid string", "string_type", value)
            return None
        if non_empty and not value.strip():
            self.error([name], "String should have at least 1 character", "string_too_short")
            return None
        if max_chars is not None and len(value) > max_chars:
            self.error(
                [name], f"String should have at most {max_chars} characters", "string_too_long"
            )
            return None
        return value

    def choice(self, name: str, allowed: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is None:
            return None
        if value not in allowed:
            self.error([name], f"Input should be {_or_list(allowed)}", "enum", value)
            return None
        return value

    def seed(self) -> int | None:
        value = self.body.get("seed")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(["seed"], "Input should be a valid integer", "int_type", value)
            return None
        if value < 0:
            self.error(["seed"], "Input should be greater than or equal to 0", "greater_than_equal")
            return None
        if value > SEED_MAX:
            self.error(
                ["seed"], f"Input should be less than or equal to {SEED_MAX}", "less_than_equal"
            )
            return None
        return value

    def duration(self) -> tuple[int | None, str | None]:
        value = self.body.get("duration")
        if value is None:
            return None, None
        if isinstance(value, int) and not isinstance(value, bool) and value in (5, 10):
            return value, "int"
        if isinstance(value, str) and value in ("5", "10"):
            return int(value), "str"
        self.error(["duration"], "Input should be 5 or 10", "enum", value)
        return None, None

    def file_url(self, loc: list[str | int], value: Any) -> str | None:
        if value is None:
            self.error(loc, "Field required", "missing")
            return None
        if not isinstance(value, str):
            self.error(loc, "Input should be a valid string", "string_type", value)
            return None
        if not value.startswith(("data:", "http://", "https://")):
            self.error(loc, "Input should be a valid URL or data URI", "url_parsing", value[:80])
            return None
        return value

    def url_list(self, name: str, low: int, high: int, *, required: bool = True) -> list[str]:
        value = self.body.get(name)
        if value is None:
            if required:
                self.error([name], "Field required", "missing")
            return []
        if not isinstance(value, list):
            self.error([name], "Input should be a valid list", "list_type")
            return []
        if len(value) < low:
            self.error(
                [name],
                f"List should have at least {low} item{'s' if low != 1 else ''} "
                f"after validation, not {len(value)}",
                "too_short",
            )
            return []
        if len(value) > high:
            self.error(
                [name],
                f"List should have at most {high} items after validation, not {len(value)}",
                "too_long",
            )
            return []
        urls = [self.file_url([name, i], item) for i, item in enumerate(value)]
        return [url for url in urls if url is not None]


def _or_list(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def validate(endpoint_id: str, body: Any) -> JobInput:
    """Check `body` against the endpoint's schema; raise InputInvalid with fal's detail list.

    The endpoint must be one of ENDPOINTS (the caller answers 404 otherwise).
    """
    schema = ENDPOINTS[endpoint_id]
    if not isinstance(body, dict):
        raise InputInvalid(
            [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
        )
    check = _Checker(body)
    job = JobInput(endpoint_id=endpoint_id, mode=schema.mode)

    for name in sorted(set(body) & PIKA_FIELDS - schema.fields):
        check.error(
            [name],
            f"Extra inputs are not permitted: {endpoint_id} does not take {name}",
            "extra_forbidden",
        )
    job.ignored_fields = sorted(set(body) - PIKA_FIELDS)

    prompt_required = schema.mode in ("text", "image", "scenes")
    job.prompt = check.string(
        "prompt", required=prompt_required, max_chars=PROMPT_MAX_CHARS, non_empty=prompt_required
    )
    job.negative_prompt = check.string("negative_prompt", max_chars=PROMPT_MAX_CHARS)
    job.seed = check.seed()
    if "aspect_ratio" in schema.fields:
        job.aspect_ratio = check.choice("aspect_ratio", ASPECT_RATIOS)
    if "resolution" in schema.fields:
        job.resolution = check.choice("resolution", schema.resolutions)
    if "duration" in schema.fields:
        job.duration, job.duration_type = check.duration()

    if schema.mode in ("image", "effect"):
        url = check.file_url(["image_url"], body.get("image_url"))
        job.image_urls = [url] if url else []
    if schema.mode == "effect":
        job.pikaffect = check.choice("pikaffect", PIKAFFECTS, required=True)
    if schema.mode == "frames":
        _check_frames(check, job)
    if schema.mode == "scenes":
        _check_scenes(check, job)
    if schema.mode in ("swap", "add"):
        job.video_url = check.file_url(["video_url"], body.get("video_url"))
        image = body.get("image_url")
        if schema.mode == "add" or image is not None:
            url = check.file_url(["image_url"], image)
            job.image_urls = [url] if url else []
    if schema.mode == "swap":
        job.modify_region = check.string("modify_region", max_chars=PROMPT_MAX_CHARS)
        if body.get("image_url") is None and not (job.prompt or "").strip():
            check.error(
                [],
                "Value error, pikaswaps needs image_url or prompt: what to put in the video",
                "value_error",
            )

    if check.detail:
        raise InputInvalid(check.detail)
    return job


def _check_frames(check: _Checker, job: JobInput) -> None:
    job.image_urls = check.url_list("image_urls", FRAMES_MIN, FRAMES_MAX)
    raw = check.body.get("transitions")
    if raw is None:
        if job.image_urls:
            job.transitions = [Transition(5, None) for _ in job.image_urls[1:]]
        return
    if not isinstance(raw, list):
        check.error(["transitions"], "Input should be a valid list", "list_type")
        return
    transitions: list[Transition] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            check.error(["transitions", i], "Input should be a valid dictionary", "dict_type")
            continue
        seconds = item.get("duration", 5)
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            check.error(
                ["transitions", i, "duration"], "Input should be a valid integer", "int_type"
            )
            continue
        if seconds < 1:
            check.error(
                ["transitions", i, "duration"],
                "Input should be greater than or equal to 1",
                "greater_than_equal",
            )
            continue
        prompt = item.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            check.error(
                ["transitions", i, "prompt"], "Input should be a valid string", "string_type"
            )
            continue
        if prompt is not None and len(prompt) > PROMPT_MAX_CHARS:
            check.error(
                ["transitions", i, "prompt"],
                f"String should have at most {PROMPT_MAX_CHARS} characters",
                "string_too_long",
            )
            continue
        transitions.append(Transition(seconds, prompt))
    if job.image_urls and len(raw) != len(job.image_urls) - 1:
        check.error(
            ["transitions"],
            f"Value error, transitions must have len(image_urls) - 1 = {len(job.image_urls) - 1} "
            f"entries, not {len(raw)}",
            "value_error",
        )
    total = sum(t.duration for t in transitions)
    if total > FRAMES_TOTAL_SECONDS_MAX:
        check.error(
            ["transitions"],
            f"Value error, the transitions last {total} s in total; "
            f"at most {FRAMES_TOTAL_SECONDS_MAX} s are allowed",
            "value_error",
        )
    job.transitions = transitions


def _check_scenes(check: _Checker, job: JobInput) -> None:
    body = check.body
    job.ingredients_mode = check.choice("ingredients_mode", INGREDIENTS_MODES)
    has_urls = body.get("image_urls") is not None
    has_images = body.get("images") is not None
    if has_urls:
        job.scenes_field = "both" if has_images else "image_urls"
        job.image_urls = check.url_list("image_urls", SCENES_MIN, SCENES_MAX)
        return
    if not has_images:
        check.error(["image_urls"], "Field required", "missing")
        return
    job.scenes_field = "images"
    raw = body["images"]
    if not isinstance(raw, list):
        check.error(["images"], "Input should be a valid list", "list_type")
        return
    if not SCENES_MIN <= len(raw) <= SCENES_MAX:
        check.error(
            ["images"],
            f"List should have {SCENES_MIN} to {SCENES_MAX} items, not {len(raw)}",
            "too_short" if len(raw) < SCENES_MIN else "too_long",
        )
        return
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            check.error(["images", i], "Input should be a valid dictionary", "dict_type")
            continue
        url = check.file_url(["images", i, "image_url"], item.get("image_url"))
        if url:
            job.image_urls.append(url)
