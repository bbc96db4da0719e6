"""The priority queue: five levels, score aging, promotion, removal and re-prioritising."""

from __future__ import annotations

import math

from engine_clock import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_bmad.engine.queue import TaskQueue
from vault_bmad.model.definitions import Priority


def drain(queue: TaskQueue) -> list[str]:
    order = []
    while (item := queue.pop()) is not None:
        order.append(item.task_id)
    return order


def standing(queue: TaskQueue, task_id: str, now: float) -> tuple[int, float]:
    """(level, score) read from the task's sort key: level 0 is overdue, Priority p is p + 1."""
    key = queue.key_of(task_id)
    assert key is not None
    level, negative_score, _ = key  # -score + waiting_weight*now, constant while queued
    return level, queue.waiting_weight * now - negative_score


def test_levels_are_served_in_order() -> None:
    queue = TaskQueue(clock=FakeClock())
    for level in reversed(Priority):
        queue.push(level.name.lower(), priority=level)
    assert drain(queue) == ["critical", "high", "normal", "low", "minimal"]
    assert queue.pop() is None and len(queue) == 0


def test_score_is_criticality_dependents_rank_and_waiting() -> None:
    clock = FakeClock()
    queue = TaskQueue(aging_step=None, rank_weight=2.0, clock=clock)
    queue.push("t", criticality=3, dependents=2, rank=1.5)
    clock.advance(40)
    level, score = standing(queue, "t", clock.now)
    assert math.isclose(score, 3 * 10 + 2 * 5 + 1.5 * 2.0 + 40 * 0.1)
    assert level == Priority.NORMAL + 1


def test_within_a_level_higher_score_first_and_waiting_overtakes() -> None:
    clock = FakeClock()
    queue = TaskQueue(aging_step=None, clock=clock)
    queue.push("old-low", criticality=1)  # score 10, grows 0.1/s
    clock.advance(50)
    queue.push("new-high", criticality=2)  # score 20 now; old-low is at 15
    assert queue.peek() is not None and queue.peek().task_id == "new-high"  # type: ignore[union-attr]
    queue.remove("new-high")
    clock.advance(100)
    queue.push("newer-high", criticality=2)  # 20; old-low has waited 150 s: 25
    assert drain(queue) == ["old-low", "newer-high"]


def test_dependents_count_breaks_a_criticality_tie() -> None:
    queue = TaskQueue(clock=FakeClock())
    queue.push("leaf", criticality=2)
    queue.push("hub", criticality=2, dependents=3)
    queue.push("top", criticality=4)
    assert drain(queue) == ["top", "hub", "leaf"]


def test_waiting_promotes_one_level_per_aging_step() -> None:
    clock = FakeClock()
    queue = TaskQueue(aging_step=60, clock=clock)
    queue.push("m", priority=Priority.MINIMAL)
    levels = []
    for _ in range(7):
        levels.append(standing(queue, "m", clock.now)[0])
        clock.advance(60)
    assert levels == [5, 4, 3, 2, 1, 0, 0]  # minimal, low, normal, high, critical, overdue


def test_minimal_task_does_not_starve_behind_endless_critical_work() -> None:
    clock = FakeClock()
    queue = TaskQueue(aging_step=60, clock=clock)
    queue.push("patient", priority=Priority.MINIMAL)
    served_at = None
    for i in range(200):
        queue.push(f"urgent-{i}", priority=Priority.CRITICAL, criticality=10)
        clock.advance(5)
        item = queue.pop()
        assert item is not None
        if item.task_id == "patient":
            served_at = clock.now - 1000.0
            break
    # Critical after 4 steps (240 s), overdue after 5: then ahead of every newcomer.
    assert served_at is not None and 240 <= served_at <= 300 + 5


def test_without_promotion_a_minimal_task_does_starve() -> None:
    clock = FakeClock()
    queue = TaskQueue(aging_step=None, clock=clock)
    queue.push("patient", priority=Priority.MINIMAL)
    for i in range(100):
        queue.push(f"urgent-{i}", priority=Priority.CRITICAL)
        clock.advance(5)
        item = queue.pop()
        assert item is not None and item.task_id != "patient"
    assert "patient" in queue


def test_reprioritise_keeps_the_wait_and_remove_takes_it_out() -> None:
    clock = FakeClock()
    queue = TaskQueue(clock=clock)
    queue.push("a", priority=Priority.LOW)
    clock.advance(30)
    queue.push("b", priority=Priority.NORMAL)
    again = queue.push("a", priority=Priority.HIGH)  # the note changed
    assert again.enqueued_at == 1000.0
    assert queue.peek() is not None and queue.peek().task_id == "a"  # type: ignore[union-attr]
    removed = queue.remove("a")
    assert removed is not None and removed.priority is Priority.HIGH
    assert queue.remove("a") is None
    assert drain(queue) == ["b"]


def test_a_task_moves_between_queues_with_its_wait() -> None:
    clock = FakeClock()
    first, second = TaskQueue(clock=clock), TaskQueue(clock=clock)
    first.push("x", priority=Priority.LOW, criticality=5)
    clock.advance(61)
    item = first.remove("x")
    assert item is not None
    second.push("x", priority=item.priority, criticality=5, enqueued_at=item.enqueued_at)
    level, score = standing(second, "x", clock.now)
    assert level == Priority.NORMAL + 1  # promoted once
    assert math.isclose(score, 50 + 6.1)


def test_many_removals_keep_the_queue_consistent() -> None:
    queue = TaskQueue(clock=FakeClock())
    for i in range(1000):
        queue.push(f"t{i}", priority=Priority(i % 5), criticality=i % 11)
    for i in range(0, 1000, 3):
        assert queue.remove(f"t{i}") is not None
    order = drain(queue)
    assert len(order) == 1000 - 334 and len(set(order)) == len(order)
    assert [int(t[1:]) % 5 for t in order] == sorted(int(t[1:]) % 5 for t in order)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 4), st.integers(0, 10), st.integers(0, 3)),
        st.tuples(st.just("pop")),
        st.tuples(st.just("remove"), st.integers(0, 30)),
        st.tuples(st.just("wait"), st.integers(1, 90)),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_pops_match_a_brute_force_reference(operations: list[tuple[object, ...]]) -> None:
    """The heaps serve exactly what scanning every task with the formula would serve.

    The waiting weight is 1/8 here so that float sums are exact and ties are true ties.
    """
    clock = FakeClock(start=0.0)
    queue = TaskQueue(aging_step=60, waiting_weight=0.125, clock=clock)
    reference: dict[str, tuple[int, int, int, float, int]] = {}
    counter = 0
    for op in operations:
        if op[0] == "push":
            level, crit, deps = int(op[1]), int(op[2]), int(op[3])  # type: ignore[call-overload]
            task_id = f"t{counter}"
            queue.push(task_id, priority=Priority(level), criticality=crit, dependents=deps)
            reference[task_id] = (level, crit, deps, clock.now, counter)
            counter += 1
        elif op[0] == "pop":
            item = queue.pop()
            expected = min(
                reference, key=lambda t: reference_key(reference[t], clock.now), default=None
            )
            assert (item.task_id if item else None) == expected
            if expected is not None:
                del reference[expected]
        elif op[0] == "remove":
            task_id = f"t{op[1]}"
            assert (queue.remove(task_id) is not None) == (task_id in reference)
            reference.pop(task_id, None)
        else:
            clock.advance(int(op[1]))  # type: ignore[call-overload]
        assert len(queue) == len(reference)


def reference_key(entry: tuple[int, int, int, float, int], now: float) -> tuple[float, ...]:
    level, crit, deps, enqueued_at, order = entry
    promoted = max(-1, level - math.floor((now - enqueued_at) / 60))  # -1: overdue
    score = crit * 10 + deps * 5 + (now - enqueued_at) * 0.125
    return (promoted, -score, order)
