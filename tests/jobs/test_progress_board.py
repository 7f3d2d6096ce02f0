"""ProgressBoard on a fake clock: one edit per job per interval, few per channel, newest wins."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from bot.jobs.messenger import Progress, Stage
from bot.jobs.progress import ProgressBoard
from bot.store import Job, JobState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def job(job_id: str, channel_id: int = 1) -> Job:
    values: dict[str, object] = {f.name: None for f in dataclasses.fields(Job)}
    values.update(
        id=job_id,
        created_at=0,
        updated_at=0,
        state=JobState.QUEUED,
        mode="text",
        endpoint_id="fal-ai/pika/v2.5/text-to-video",
        request_json="{}",
        input_hashes=(),
        cost=20,
        guild_id=1,
        channel_id=channel_id,
        user_id=7,
    )
    return Job(**values)  # type: ignore[arg-type]


def waiting(position: int) -> Progress:
    return Progress(Stage.WAITING, position=position)


def generating(seconds: float) -> Progress:
    return Progress(Stage.GENERATING, elapsed_s=seconds)


class Recorder:
    """The `show` callback: remembers every edit and when it was made."""

    def __init__(self, clock: Clock, *, takes: float = 0.0) -> None:
        self.clock = clock
        self.takes = takes
        self.edits: list[tuple[str, Progress, float]] = []

    async def __call__(self, job: Job, progress: Progress) -> None:
        self.edits.append((job.id, progress, self.clock.now))
        self.clock.now += self.takes

    def of(self, job_id: str) -> list[Progress]:
        return [progress for jid, progress, _ in self.edits if jid == job_id]


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_one_job_is_edited_at_most_once_per_interval_and_ends_on_the_newest(
    clock: Clock,
) -> None:
    show = Recorder(clock)
    board = ProgressBoard(show, interval=5, clock=clock)
    a = job("a")
    board.report(a, waiting(3))
    assert await board.flush() == 1
    for n in range(20):
        clock.now += 0.2
        board.report(a, generating(n))
        await board.flush()
    # 4 s passed: nothing more was due, however many reports came.
    assert show.of("a") == [waiting(3)]
    clock.now += 1.0
    assert await board.flush() == 1
    assert show.of("a") == [waiting(3), generating(19)]
    times = [at for _, _, at in show.edits]
    assert times[1] - times[0] >= 5


async def test_nothing_is_sent_when_nothing_changed(clock: Clock) -> None:
    show = Recorder(clock)
    board = ProgressBoard(show, interval=5, clock=clock)
    board.report(job("a"), waiting(2))
    await board.flush()
    clock.now += 60
    board.report(job("a"), waiting(2))
    assert await board.flush() == 0


async def test_the_first_reply_counts_as_an_edit(clock: Clock) -> None:
    show = Recorder(clock)
    board = ProgressBoard(show, interval=5, clock=clock)
    a = job("a")
    board.shown_now(a, waiting(1))
    board.report(a, Progress(Stage.FAL_QUEUE, position=1))
    assert await board.flush() == 0
    clock.now += 5
    assert await board.flush() == 1
    assert show.of("a") == [Progress(Stage.FAL_QUEUE, position=1)]


async def test_the_interval_runs_from_when_a_slow_edit_was_answered(clock: Clock) -> None:
    show = Recorder(clock, takes=3.0)
    board = ProgressBoard(show, interval=5, clock=clock)
    a = job("a")
    board.report(a, waiting(2))
    await board.flush()  # sent at 1000, answered at 1003
    board.report(a, waiting(1))
    clock.now = 1006.0
    assert await board.flush() == 0
    clock.now = 1008.0
    assert await board.flush() == 1


async def test_a_channel_gets_at_most_per_channel_edits_per_interval(clock: Clock) -> None:
    show = Recorder(clock)
    board = ProgressBoard(show, interval=5, per_channel=2, clock=clock)
    jobs = [job(name, channel_id=1) for name in "abc"]
    elsewhere = job("z", channel_id=2)
    for n, each in enumerate([*jobs, elsewhere]):
        board.report(each, waiting(n + 1))
    assert await board.flush() == 3
    assert sorted(jid for jid, _, _ in show.edits) == ["a", "b", "z"]
    clock.now += 1
    assert await board.flush() == 0  # the channel's two edits of this interval are spent
    clock.now += 4
    assert await board.flush() == 1
    assert show.edits[-1][0] == "c"


async def test_the_longest_unedited_job_goes_first(clock: Clock) -> None:
    show = Recorder(clock)
    board = ProgressBoard(show, interval=5, per_channel=1, clock=clock)
    old, new = job("old"), job("new")
    board.shown_now(old, waiting(2))
    clock.now += 2
    board.shown_now(new, waiting(3))
    clock.now += 10
    board.report(new, waiting(2))
    board.report(old, waiting(1))
    await board.flush()
    assert [jid for jid, _, _ in show.edits] == ["old"]


async def test_a_forgotten_job_is_not_edited(clock: Clock) -> None:
    show = Recorder(clock)
    board = ProgressBoard(show, interval=5, clock=clock)
    board.report(job("a"), waiting(1))
    board.forget("a")
    assert await board.flush() == 0
    assert show.edits == []


async def test_a_failed_edit_is_logged_and_the_others_still_go(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[str] = []

    async def show(each: Job, progress: Progress) -> None:
        if each.id == "bad":
            raise RuntimeError("Discord said no")
        sent.append(each.id)

    board = ProgressBoard(show, interval=5, clock=clock)
    board.report(job("bad"), waiting(1))
    board.report(job("good"), waiting(2))
    with caplog.at_level(logging.WARNING):
        assert await board.flush() == 2
    assert sent == ["good"]
    assert "bad" in caplog.text
