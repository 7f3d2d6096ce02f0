"""Helpers for the store tests: a settable clock, a job factory, roomy limits, and a job's ending
as the bot writes it."""

from __future__ import annotations

import json
from typing import Any

from bot.store import UNFINISHED_STATES, JobState, LedgerKind, NewJob, Store

PERIOD = "2026-11-21"
T0 = 1_795_300_000  # 2026-11-21T...Z, inside PERIOD


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


def new_job(user_id: int = 100, guild_id: int = 1, **overrides: Any) -> NewJob:
    values: dict[str, Any] = {
        "mode": "text",
        "endpoint_id": "fal-ai/pika/v2.5/text-to-video",
        "request_json": json.dumps({"mode": "text", "prompt": "a cat surfing"}),
        "guild_id": guild_id,
        "channel_id": 10,
        "user_id": user_id,
        "input_hashes": (),
        "interaction_id": 555,
        "interaction_token": "interaction-token-secret",
        "token_expires_at": T0 + 900,
    }
    values.update(overrides)
    return NewJob(**values)


# Generous limits, so a test names only the limit it is about.
ROOMY: dict[str, Any] = {
    "allowance": 10_000,
    "guild_budget": 100_000,
    "global_budget": 1_000_000,
    "max_unfinished": 1_000,
    "period": PERIOD,
}


def limits(**overrides: Any) -> dict[str, Any]:
    return {**ROOMY, **overrides}


async def settle(store: Store, job_id: str, *, actor_id: int = 0, note: str = "") -> bool:
    """End the job delivered and charged, as the runner does; False if it already ended."""
    return await _end(store, job_id, JobState.DELIVERED, LedgerKind.SETTLE, actor_id, note)


async def refund(store: Store, job_id: str, *, actor_id: int = 0, note: str = "") -> bool:
    """End the job failed and refunded, as the runner does; False if it already ended."""
    return await _end(store, job_id, JobState.FAILED, LedgerKind.REFUND, actor_id, note)


async def _end(
    store: Store, job_id: str, state: JobState, outcome: LedgerKind, actor_id: int, note: str
) -> bool:
    return await store.jobs.finish(
        job_id, state, expected=UNFINISHED_STATES, outcome=outcome, actor_id=actor_id, note=note
    )
