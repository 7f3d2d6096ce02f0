"""The fair queue with few fal slots: a member's burst does not win every tie."""

from __future__ import annotations

from bot.jobs.queue import FairQueue

A, B, C = 1, 2, 3


def run_one_slot(queue: FairQueue, picks: int) -> list[str]:
    """Start jobs one at a time, each finishing before the next starts (one fal slot)."""
    started: list[str] = []
    for _ in range(picks):
        item = queue.pop()
        assert item is not None
        started.append(item.job_id)
        queue.finished(item.user_id)
    return started


def test_with_one_slot_another_members_first_job_goes_next() -> None:
    queue = FairQueue()
    for n in range(1, 6):
        queue.add(f"a{n}", A, created_at=n)
    first = queue.pop()
    assert first is not None
    assert first.job_id == "a1"
    queue.add("b1", B, created_at=100)
    assert queue.positions()["b1"] == 1
    queue.finished(A)
    assert run_one_slot(queue, 5) == ["b1", "a2", "a3", "a4", "a5"]


def test_with_one_slot_members_take_turns() -> None:
    queue = FairQueue()
    for n in range(3):
        queue.add(f"a{n}", A, created_at=n)
        queue.add(f"b{n}", B, created_at=10 + n)
        queue.add(f"c{n}", C, created_at=20 + n)
    predicted = [item.job_id for item in queue.order()]
    started = run_one_slot(queue, 9)
    assert started == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]
    # The positions shown assume jobs stay at fal; with one slot each finishes first, and
    # members still take turns in the same order.
    assert predicted == started


def test_new_members_start_in_the_order_they_came() -> None:
    queue = FairQueue()
    queue.add("c1", C, created_at=3)
    queue.add("a1", A, created_at=1)
    queue.add("b1", B, created_at=2)
    assert run_one_slot(queue, 3) == ["a1", "b1", "c1"]


def test_a_member_with_nothing_left_is_forgotten() -> None:
    queue = FairQueue()
    queue.add("a1", A, created_at=1)
    assert run_one_slot(queue, 1) == ["a1"]
    # A's earlier turn no longer counts against A once A had nothing waiting or running.
    queue.add("b1", B, created_at=5)
    queue.add("a2", A, created_at=3)
    assert run_one_slot(queue, 2) == ["a2", "b1"]
    assert queue.at_fal() == 0
