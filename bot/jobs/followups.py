"""New jobs made from a finished one: Re-roll (new seed), Remix (edited prompts), Continue."""

from __future__ import annotations

import asyncio
import io
import secrets
from pathlib import Path

from PIL import Image

from bot.media import InputCache, VideoUnreadable, last_frame
from bot.pika import (
    SEED_MAX,
    InputRef,
    InvalidRequest,
    Mode,
    PikaRequest,
    build_request,
    parse_request,
    revise,
)
from bot.store import Job

# Continue animates the last frame; a frame smaller than the input minimum is scaled up to it.
MIN_SIDE = 256
CONTINUE_PROMPT = "Continue the scene naturally."


class InputsGone(InvalidRequest):
    """A follow-up needs files the bot no longer keeps."""


def _new_seed() -> int:
    return secrets.randbelow(SEED_MAX + 1)


def _stored_request(job: Job, cache: InputCache) -> PikaRequest:
    if job.request_json == "{}":
        # Retention cleared the request of a long-finished job (PIKABOT_JOB_RETENTION_DAYS).
        raise InputsGone(
            "This job is older than the bot keeps prompts and settings, so it cannot be "
            "repeated; run the command again."
        )
    try:
        request = parse_request(job.request_json)
    except InvalidRequest:
        raise InvalidRequest(
            "This job was made by an older version of the bot and cannot be repeated; run the "
            "command again."
        ) from None
    if any(ref.sha256 not in cache for ref in request.inputs):
        raise InputsGone(
            "The files of this job are no longer kept by the bot (they are dropped after a "
            "while); run the command again with the files."
        )
    return request


def reroll_request(job: Job, cache: InputCache) -> PikaRequest:
    """The same request with a new seed."""
    return revise(_stored_request(job, cache), seed=_new_seed())


def remix_request(
    job: Job, cache: InputCache, *, prompt: str | None, negative_prompt: str | None
) -> PikaRequest:
    """The same request with edited prompts (same seed, so the edit is what changes)."""
    request = _stored_request(job, cache)
    return revise(request, prompt=prompt or None, negative_prompt=negative_prompt or None)


def _frame_png(video: Path) -> bytes:
    data = last_frame(video)
    with Image.open(io.BytesIO(data)) as image:
        if min(image.size) >= MIN_SIDE:
            return data
        scale = MIN_SIDE / min(image.size)
        size = (round(image.width * scale), round(image.height * scale))
        out = io.BytesIO()
        image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(out, "PNG")
        return out.getvalue()


async def continue_request(job: Job, cache: InputCache) -> PikaRequest:
    """Animate the video's last frame with the same prompt: the next step of a longer story."""
    if job.output_path is None or not await asyncio.to_thread(Path(job.output_path).is_file):
        raise InputsGone(
            "The bot no longer keeps this video, so it cannot continue it; run the command again."
        )
    try:
        frame = await asyncio.to_thread(_frame_png, Path(job.output_path))
    except VideoUnreadable:
        raise InvalidRequest("The bot could not read this video's last frame.") from None
    sha = await asyncio.to_thread(cache.put, frame)
    stored = job.request
    prompt = stored.get("prompt") if isinstance(stored.get("prompt"), str) else None
    resolution = stored.get("resolution")
    duration = stored.get("duration")
    return build_request(
        Mode.ANIMATE,
        image=InputRef(sha256=sha, content_type="image/png"),
        prompt=prompt or CONTINUE_PROMPT,
        negative_prompt=stored.get("negative_prompt"),
        resolution=resolution if resolution in ("720p", "1080p") else None,
        duration=duration if duration in (5, 10) else None,
        seed=_new_seed(),
    )
