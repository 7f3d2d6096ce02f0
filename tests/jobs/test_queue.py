"""The fair queue: oldest job of the member with the fewest jobs at fal goes first."""

from __future__ import annotations

from bot.jobs.queue import FairQueue

A, B, C = 1, 2, 3


def test_empty_queue_gives_nothing() -> None:
    assert FairQueue().pop() is None


def test_one_member_jobs_start_oldest_first() -> None:
    queue = FairQueue()
    queue.add("a2", A, created_at=20)
    queue.add("a1", A, created_at=10)
    first, second = queue.pop(), queue.pop()
    assert first is not None
    assert second is not None
    assert (first.job_id, second.job_id) == ("a1", "a2")


def test_a_burst_does_not_delay_another_members_first_job() -> None:
    queue = FairQueue()
    for n in range(5):
        queue.add(f"a{n}", A, created_at=n)
    queue.add("b0", B, created_at=100)
    started = [queue.pop() for _ in range(2)]
    assert "b0" in {item.job_id for item in started if item is not None}


def test_member_with_fewest_jobs_at_fal_goes_first_even_if_newer() -> None:
    queue = FairQueue()
    queue.started(A)
    queue.add("a1", A, created_at=1)
    queue.add("b1", B, created_at=2)
    item = queue.pop()
    assert item is not None
    assert item.job_id == "b1"
    assert queue.at_fal(B) == 1


def test_finished_jobs_free_their_member() -> None:
    queue = FairQueue()
    queue.started(A)
    queue.started(A)
    queue.finished(A)
    assert queue.at_fal(A) == 1
    queue.finished(A)
    queue.finished(A)
    assert queue.at_fal(A) == 0
    assert queue.at_fal() == 0


def test_positions_follow_the_order_of_picks() -> None:
    queue = FairQueue()
    for n in range(3):
        queue.add(f"a{n}", A, created_at=n)
    queue.add("b0", B, created_at=10)
    queue.add("c0", C, created_at=11)
    positions = queue.positions()
    assert positions == {"a0": 1, "b0": 2, "c0": 3, "a1": 4, "a2": 5}
    popped = [queue.pop() for _ in range(5)]
    assert [item.job_id for item in popped if item is not None] == ["a0", "b0", "c0", "a1", "a2"]


def test_positions_move_up_when_a_job_is_removed() -> None:
    queue = FairQueue()
    queue.add("a0", A, created_at=0)
    queue.add("b0", B, created_at=1)
    assert queue.positions()["b0"] == 2
    assert queue.remove("a0")
    assert not queue.remove("a0")
    assert queue.positions() == {"b0": 1}


def test_adding_twice_keeps_the_first_place() -> None:
    queue = FairQueue()
    queue.add("a0", A, created_at=0)
    queue.add("b0", B, created_at=1)
    queue.add("a0", A, created_at=5)
    assert len(queue) == 2
    assert queue.positions()["a0"] == 1
