"""What each request costs in credits: the configurable price list and the price of a request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator

from bot.pika.catalogue import (
    DEFAULT_DURATION_S,
    DURATIONS,
    ENDPOINTS,
    ENDPOINTS_BY_ID,
    Endpoint,
    Mode,
    or_list,
)
from bot.pika.requests import FramesRequest, PikaRequest


class Pricing(StrEnum):
    """How an endpoint is priced."""

    CLIP = "clip"  # by resolution and clip length
    PER_SECOND = "per_second"  # by resolution, per second of video (frames' transitions)
    FLAT = "flat"  # one price whatever the options


def pricing_of(endpoint: Endpoint) -> Pricing:
    """How the endpoint is priced."""
    if endpoint.mode is Mode.FRAMES:
        return Pricing.PER_SECOND
    if not endpoint.resolutions:
        return Pricing.FLAT
    return Pricing.CLIP


def price_keys(endpoint: Endpoint) -> tuple[str, ...]:
    """The keys an override of this endpoint may set: "720p/5s", "720p/per_second" or "flat"."""
    match pricing_of(endpoint):
        case Pricing.CLIP:
            return tuple(f"{res}/{d.value}s" for res in endpoint.resolutions for d in DURATIONS)
        case Pricing.PER_SECOND:
            return tuple(f"{res}/per_second" for res in endpoint.resolutions)
        case Pricing.FLAT:
            return ("flat",)


def _exact_keys(value: dict[str, int], wanted: tuple[str, ...], what: str) -> dict[str, int]:
    if set(value) != set(wanted):
        raise ValueError(f"{what} must give a price for exactly {or_list(wanted)}")
    return value


class PriceList(BaseModel):
    """Credits per request (by default 1 credit = 1 US cent), following fal's published price.

    Defaults: a 5 s clip (text, animate, scenes) costs 10 at 480p, 20 at 720p, 45 at 1080p,
    10 s costs double; frames cost 4 credits per second of transitions at 720p, 9 at 1080p;
    effect, swap and add cost 20. `overrides` sets single prices per endpoint id, e.g.
    {"fal-ai/pika/v2.5/text-to-video": {"1080p/10s": 80}}; an override wins over the defaults.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    clip_5s: dict[str, NonNegativeInt] = Field(
        default_factory=lambda: {"480p": 10, "720p": 20, "1080p": 45}
    )
    frames_per_second: dict[str, NonNegativeInt] = Field(
        default_factory=lambda: {"720p": 4, "1080p": 9}
    )
    flat: NonNegativeInt = 20
    overrides: dict[str, dict[str, NonNegativeInt]] = Field(default_factory=dict)

    @field_validator("clip_5s")
    @classmethod
    def _clip_5s(cls, value: dict[str, int]) -> dict[str, int]:
        return _exact_keys(value, ("480p", "720p", "1080p"), "clip_5s")

    @field_validator("frames_per_second")
    @classmethod
    def _frames_per_second(cls, value: dict[str, int]) -> dict[str, int]:
        return _exact_keys(value, ("720p", "1080p"), "frames_per_second")

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for endpoint_id, prices in value.items():
            endpoint = ENDPOINTS_BY_ID.get(endpoint_id)
            if endpoint is None:
                raise ValueError(
                    f"overrides names an unknown endpoint {endpoint_id!r}; "
                    f"known endpoints are {or_list(ENDPOINTS_BY_ID)}"
                )
            allowed = price_keys(endpoint)
            for key in prices:
                if key not in allowed:
                    raise ValueError(
                        f"overrides[{endpoint_id!r}] has an unknown key {key!r}; "
                        f"use {or_list(allowed)}"
                    )
        return value

    def rate(self, endpoint: Endpoint, key: str) -> int:
        """The credits of one price key of an endpoint (see `price_keys`), overrides first."""
        if key not in price_keys(endpoint):
            raise KeyError(f"{endpoint.id} has no price {key!r}")
        override = self.overrides.get(endpoint.id, {}).get(key)
        if override is not None:
            return override
        match pricing_of(endpoint):
            case Pricing.CLIP:
                resolution, seconds = key.removesuffix("s").split("/")
                return self.clip_5s[resolution] * int(seconds) // DEFAULT_DURATION_S
            case Pricing.PER_SECOND:
                return self.frames_per_second[key.split("/")[0]]
            case Pricing.FLAT:
                return self.flat


def price(request: PikaRequest, prices: PriceList) -> int:
    """What the request costs, at the resolution and length fal will actually make."""
    endpoint = request.endpoint
    resolution = request.effective_resolution
    match pricing_of(endpoint):
        case Pricing.CLIP:
            return prices.rate(endpoint, f"{resolution}/{request.effective_duration}s")
        case Pricing.PER_SECOND:
            assert isinstance(request, FramesRequest)  # frames alone are priced per second
            return prices.rate(endpoint, f"{resolution}/per_second") * request.total_duration
        case Pricing.FLAT:
            return prices.rate(endpoint, "flat")


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One line of the price table."""

    endpoint: Endpoint
    key: str
    credits: int
    resolution: str | None
    duration: int | None  # clip length in seconds; None for flat and per-second prices
    per_second: bool

    @property
    def label(self) -> str:
        """What the price is for, e.g. "720p, 5 s", "1080p, per second" or "any"."""
        if self.per_second:
            return f"{self.resolution}, per second"
        if self.resolution is None:
            return "any"
        return f"{self.resolution}, {self.duration} s"


def price_table(prices: PriceList) -> list[PriceRow]:
    """Every price in effect, endpoint by endpoint in catalogue order."""
    rows: list[PriceRow] = []
    for endpoint in ENDPOINTS:
        kind = pricing_of(endpoint)
        for key in price_keys(endpoint):
            resolution: str | None = None
            duration: int | None = None
            if kind is not Pricing.FLAT:
                resolution, rest = key.split("/")
                if kind is Pricing.CLIP:
                    duration = int(rest.removesuffix("s"))
            rows.append(
                PriceRow(
                    endpoint=endpoint,
                    key=key,
                    credits=prices.rate(endpoint, key),
                    resolution=resolution,
                    duration=duration,
                    per_second=kind is Pricing.PER_SECOND,
                )
            )
    return rows
