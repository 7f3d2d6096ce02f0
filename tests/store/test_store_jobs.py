"""Jobs: ids, guarded state changes, timestamps, resumable listing and secrets kept out of repr."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.store import (
    TERMINAL_STATES,
    DeliveryPath,
    JobState,
    LedgerKind,
    NewJob,
    Store,
    new_job_id,
)

from .factories import T0, FakeClock, limits, new_job


def test_job_ids_are_short_random_base32() -> None:
    ids = {new_job_id() for _ in range(2_000)}
    assert len(ids) == 2_000
    assert all(len(i) == 8 and set(i) <= set("abcdefghijklmnopqrstuvwxyz234567") for i in ids)


async def test_created_job_keeps_everything_it_was_given(store: Store) -> None:
    given = new_job(
        input_hashes=("a" * 64, "b" * 64),
        seed=42,
        request_json=json.dumps({"mode": "text", "prompt": "dawn over hills"}),
    )
    job = await store.jobs.create(given, cost=20, actor_id=100, **limits())
    assert job.state is JobState.QUEUED
    assert (job.created_at, job.updated_at) == (T0, T0)
    assert job.input_hashes == ("a" * 64, "b" * 64)
    assert job.request == {"mode": "text", "prompt": "dawn over hills"}
    assert (job.cost, job.seed, job.guild_id, job.channel_id, job.user_id) == (20, 42, 1, 10, 100)
    assert (job.interaction_id, job.interaction_token) == (555, "interaction-token-secret")
    assert job.token_expires_at == T0 + 900
    assert await store.jobs.get(job.id) == job


async def test_interaction_token_stays_out_of_repr(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    assert "interaction-token-secret" not in repr(job)
    assert "interaction-token-secret" not in repr(new_job())


def test_new_job_refuses_request_that_is_not_a_json_object() -> None:
    with pytest.raises(ValueError, match="JSON"):
        new_job(request_json="{not json")
    with pytest.raises(ValueError, match="object"):
        new_job(request_json="[1, 2]")


async def test_transition_moves_only_from_expected_states(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    assert not await store.jobs.transition(job.id, JobState.RUNNING, expected=[JobState.SUBMITTED])
    assert (await store.jobs.get(job.id)).state is JobState.QUEUED  # type: ignore[union-attr]
    assert await store.jobs.transition(job.id, JobState.SUBMITTING, expected=[JobState.QUEUED])
    assert (await store.jobs.get(job.id)).state is JobState.SUBMITTING  # type: ignore[union-attr]


async def test_transition_of_unknown_job_returns_false(store: Store) -> None:
    assert not await store.jobs.transition("nosuchjb", JobState.FAILED, expected=[JobState.QUEUED])


async def test_concurrent_deliveries_of_one_job_succeed_once(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    await store.jobs.transition(job.id, JobState.DOWNLOADED, expected=[JobState.QUEUED])
    results = await asyncio.gather(
        *(
            store.jobs.finish(
                job.id,
                JobState.DELIVERED,
                expected=[JobState.DOWNLOADED],
                outcome=LedgerKind.SETTLE,
                result_message_id=9000 + i,
            )
            for i in range(10)
        )
    )
    assert results.count(True) == 1
    assert [r.kind for r in await store.ledger.for_job(job.id)].count(LedgerKind.SETTLE) == 1


async def test_submission_details_and_timestamps_are_stored(store: Store, clock: FakeClock) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    await store.jobs.transition(job.id, JobState.SUBMITTING, expected=[JobState.QUEUED])
    clock.now = T0 + 5
    await store.jobs.transition(
        job.id,
        JobState.SUBMITTED,
        expected=[JobState.SUBMITTING],
        fal_request_id="req-123",
        status_url="http://127.0.0.1/status",
        response_url="http://127.0.0.1/response",
        cancel_url="http://127.0.0.1/cancel",
        fal_queue_position=3,
    )
    clock.now = T0 + 20
    await store.jobs.transition(
        job.id, JobState.RUNNING, expected=[JobState.SUBMITTED], fal_queue_position=None
    )
    clock.now = T0 + 80
    await store.jobs.transition(
        job.id, JobState.COMPLETED, expected=[JobState.RUNNING], video_url="http://127.0.0.1/v.mp4"
    )
    clock.now = T0 + 85
    await store.jobs.transition(
        job.id,
        JobState.DOWNLOADED,
        expected=[JobState.COMPLETED],
        output_path="/data/out/x.mp4",
        output_size=1234,
    )
    clock.now = T0 + 90
    await store.jobs.finish(
        job.id,
        JobState.DELIVERED,
        expected=[JobState.DOWNLOADED],
        outcome=LedgerKind.SETTLE,
        result_message_id=777,
        delivery_path=DeliveryPath.CHANNEL,
    )
    done = await store.jobs.get(job.id)
    assert done is not None
    assert done.state is JobState.DELIVERED
    assert (done.fal_request_id, done.status_url, done.cancel_url) == (
        "req-123",
        "http://127.0.0.1/status",
        "http://127.0.0.1/cancel",
    )
    assert done.fal_queue_position is None
    assert (done.submitted_at, done.started_at, done.completed_at, done.finished_at) == (
        T0 + 5,
        T0 + 20,
        T0 + 80,
        T0 + 90,
    )
    assert (done.output_path, done.output_size, done.video_url) == (
        "/data/out/x.mp4",
        1234,
        "http://127.0.0.1/v.mp4",
    )
    assert (done.result_message_id, done.delivery_path) == (777, DeliveryPath.CHANNEL)
    assert done.updated_at == T0 + 90


async def test_failure_records_plain_words_and_a_code(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    await store.jobs.finish(
        job.id,
        JobState.FAILED,
        expected=[JobState.QUEUED],
        outcome=LedgerKind.REFUND,
        error="fal could not make this video: the image was refused.",
        error_code="content_policy",
    )
    failed = await store.jobs.get(job.id)
    assert failed is not None
    assert (failed.error_code, failed.terminal) == ("content_policy", True)
    assert await store.jobs.failure_counts(1, since=T0) == {"content_policy": 1}


async def test_update_job_changes_columns_without_touching_state(
    store: Store, clock: FakeClock
) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    clock.now += 3
    assert await store.jobs.update(job.id, progress_message_id=4242, interaction_token=None)
    updated = await store.jobs.get(job.id)
    assert updated is not None
    assert (updated.state, updated.progress_message_id, updated.interaction_token) == (
        JobState.QUEUED,
        4242,
        None,
    )
    assert updated.updated_at == clock.now
    assert not await store.jobs.update("nosuchjb", progress_message_id=1)


async def test_fixed_columns_cannot_be_changed(store: Store) -> None:
    job = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    with pytest.raises(ValueError, match="cannot be changed"):
        await store.jobs.update(job.id, cost=0)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="cannot be changed"):
        await store.jobs.transition(
            job.id,
            JobState.RUNNING,
            expected=[JobState.QUEUED],
            **{"state = 'delivered', cost": 0},  # type: ignore[arg-type]
        )
    assert await store.jobs.get(job.id) == job


async def test_unfinished_jobs_lists_non_terminal_jobs_oldest_first(
    store: Store, clock: FakeClock
) -> None:
    created = []
    for state in JobState:
        created.append(await store.jobs.create(new_job(), cost=1, actor_id=100, **limits()))
        await store.jobs.transition(created[-1].id, state, expected=[JobState.QUEUED])
    # Same-second jobs keep their creation order.
    clock.now += 1
    newest = await store.jobs.create(new_job(), cost=1, actor_id=100, **limits())
    unfinished = await store.jobs.unfinished()
    expected = [
        job.id for job, state in zip(created, JobState, strict=True) if state not in TERMINAL_STATES
    ]
    assert [job.id for job in unfinished] == [*expected, newest.id]
    assert await store.jobs.count_unfinished(100) == len(expected) + 1


async def test_recent_and_newest_unfinished_jobs_of_a_member(
    store: Store, clock: FakeClock
) -> None:
    first = await store.jobs.create(new_job(guild_id=1), cost=1, actor_id=100, **limits())
    clock.now += 1
    second = await store.jobs.create(new_job(guild_id=2), cost=1, actor_id=100, **limits())
    clock.now += 1
    third = await store.jobs.create(new_job(guild_id=1), cost=1, actor_id=100, **limits())
    await store.jobs.create(new_job(user_id=200), cost=1, actor_id=200, **limits())
    await store.jobs.finish(third.id, JobState.CANCELLED, expected=[JobState.QUEUED], outcome=None)

    assert [j.id for j in await store.jobs.recent(100)] == [third.id, second.id, first.id]
    assert [j.id for j in await store.jobs.recent(100, guild_id=1)] == [third.id, first.id]
    assert [j.id for j in await store.jobs.recent(100, limit=1)] == [third.id]
    newest = await store.jobs.newest_unfinished(100)
    assert newest is not None
    assert newest.id == second.id
    in_guild = await store.jobs.newest_unfinished(100, guild_id=1)
    assert in_guild is not None
    assert in_guild.id == first.id
    assert await store.jobs.newest_unfinished(300) is None


async def test_chained_job_points_at_its_parent(store: Store) -> None:
    parent = await store.jobs.create(new_job(), cost=20, actor_id=100, **limits())
    child = await store.jobs.create(
        new_job(parent_job_id=parent.id), cost=20, actor_id=100, **limits()
    )
    assert child.parent_job_id == parent.id


def test_new_job_is_a_plain_value() -> None:
    job = NewJob(
        mode="effect",
        endpoint_id="fal-ai/pika/v1.5/pikaffects",
        request_json="{}",
        guild_id=1,
        channel_id=2,
        user_id=3,
    )
    assert job.input_hashes == ()
    assert job.interaction_token is None
