"""The ready queue: five priority levels, a score that ages, and promotion so nothing starves.

Within a level the task with the highest score is served first, where

    score = criticality*10 + dependents*5 + rank*rank_weight + waiting_seconds*0.1

`rank` is the task's upward rank (predicted seconds of work on its longest path to the end),
the critical-path-first term; `rank_weight=0` gives the plain formula. Because every task's
score grows at the same rate, `score - 0.1*now` is a constant per task, so each level is a
plain heap. A task is also promoted one level for every `aging_step` seconds it has waited;
one step past critical it becomes overdue, ahead of every task that is not, so a minimal task
cannot starve behind an endless stream of critical ones (it is served within about
5*aging_step, unless other overdue work is ahead of it). Promotions are applied lazily from a
second heap per level, ordered by due time: push, pop and remove are O(log n) amortised.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from vault_bmad.model.definitions import Priority

LEVELS = len(Priority) + 1  # internal level 0 is "overdue"; level n+1 is Priority(n)
QueueKey = tuple[int, float, int]  # (level, -score + waiting_weight*now, arrival order)


@dataclass(frozen=True)
class QueuedTask:
    """One task waiting in the queue, as it was pushed."""

    task_id: str
    priority: Priority  # the level it was queued at, before promotion
    criticality: int
    dependents: int
    rank: float
    enqueued_at: float


class _Entry:
    """Internal mutable slot; heap items holding a dead or moved entry are skipped lazily."""

    __slots__ = ("alive", "item", "key", "level", "seq")

    def __init__(self, item: QueuedTask, key: float, seq: int) -> None:
        self.item = item
        self.key = key  # lower is better; constant while queued
        self.seq = seq
        self.level = int(item.priority) + 1
        self.alive = True


class TaskQueue:
    """Priority queue of task ids; see the module docstring for the order it serves."""

    def __init__(
        self,
        *,
        aging_step: float | None = 60.0,
        criticality_weight: float = 10.0,
        dependents_weight: float = 5.0,
        waiting_weight: float = 0.1,
        rank_weight: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if aging_step is not None and aging_step <= 0:
            raise ValueError("aging_step must be positive, or None to turn promotion off")
        self.aging_step = math.inf if aging_step is None else aging_step
        self.criticality_weight = criticality_weight
        self.dependents_weight = dependents_weight
        self.waiting_weight = waiting_weight
        self.rank_weight = rank_weight
        self._clock = clock
        self._seq = itertools.count()
        self._entries: dict[str, _Entry] = {}
        self._by_score: list[list[tuple[float, int, _Entry]]] = [[] for _ in range(LEVELS)]
        self._by_due: list[list[tuple[float, int, _Entry]]] = [[] for _ in range(LEVELS)]
        self._stale = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def push(
        self,
        task_id: str,
        *,
        priority: Priority = Priority.NORMAL,
        criticality: int = 0,
        dependents: int = 0,
        rank: float = 0.0,
        enqueued_at: float | None = None,
    ) -> QueuedTask:
        """Queue a task. Pushing a queued task again re-prioritises it and keeps its wait."""
        previous = self._entries.get(task_id)
        if enqueued_at is None:
            enqueued_at = previous.item.enqueued_at if previous else self._clock()
        if previous is not None:
            self._kill(previous)
        item = QueuedTask(task_id, priority, criticality, dependents, rank, enqueued_at)
        self._insert(item)
        return item

    def pop(self) -> QueuedTask | None:
        """Take the task to serve next, or None when the queue is empty."""
        entry = self._head()
        if entry is None:
            return None
        self._kill(entry)
        return entry.item

    def peek(self) -> QueuedTask | None:
        entry = self._head()
        return entry.item if entry else None

    def head_key(self) -> QueueKey | None:
        """The head's sort key; heads of queues sharing a clock and weights compare directly."""
        entry = self._head()
        return (entry.level, entry.key, entry.seq) if entry else None

    def key_of(self, task_id: str) -> QueueKey | None:
        """A queued task's sort key (as head_key), or None when it is not queued."""
        entry = self._entries.get(task_id)
        if entry is None:
            return None
        self._promote(self._clock())
        return (entry.level, entry.key, entry.seq)

    def remove(self, task_id: str) -> QueuedTask | None:
        """Take a task out wherever it stands; None when it was not queued."""
        entry = self._entries.get(task_id)
        if entry is None:
            return None
        self._kill(entry)
        return entry.item

    def get(self, task_id: str) -> QueuedTask | None:
        entry = self._entries.get(task_id)
        return entry.item if entry else None

    def _static(self, item: QueuedTask) -> float:
        return (
            self.criticality_weight * item.criticality
            + self.dependents_weight * item.dependents
            + self.rank_weight * item.rank
        )

    def _insert(self, item: QueuedTask) -> None:
        key = -(self._static(item) - self.waiting_weight * item.enqueued_at)
        entry = _Entry(item, key, next(self._seq))
        self._entries[item.task_id] = entry
        heapq.heappush(self._by_score[entry.level], (entry.key, entry.seq, entry))
        self._schedule_promotion(entry)

    def _schedule_promotion(self, entry: _Entry) -> None:
        if entry.level == 0 or math.isinf(self.aging_step):
            return
        steps = int(entry.item.priority) + 1 - entry.level + 1
        due = entry.item.enqueued_at + steps * self.aging_step
        heapq.heappush(self._by_due[entry.level], (due, entry.seq, entry))

    def _promote(self, now: float) -> None:
        """Move every task whose next promotion is due up a level, lowest levels first."""
        for level in range(LEVELS - 1, 0, -1):
            due_heap = self._by_due[level]
            while due_heap and due_heap[0][0] <= now:
                _, _, entry = heapq.heappop(due_heap)
                if not entry.alive or entry.level != level:
                    continue
                entry.level = level - 1
                self._stale += 1  # its item in this level's score heap is now dead
                heapq.heappush(self._by_score[entry.level], (entry.key, entry.seq, entry))
                self._schedule_promotion(entry)

    def _head(self) -> _Entry | None:
        if not self._entries:
            return None
        self._promote(self._clock())
        for level, heap in enumerate(self._by_score):
            while heap:
                entry = heap[0][2]
                if entry.alive and entry.level == level:
                    return entry
                heapq.heappop(heap)
                self._stale -= 1
        raise AssertionError("queue index out of step with its heaps")  # pragma: no cover

    def _kill(self, entry: _Entry) -> None:
        entry.alive = False
        del self._entries[entry.item.task_id]
        self._stale += 1
        if self._stale > 2 * len(self._entries) + 64:
            self._compact()

    def _compact(self) -> None:
        """Rebuild the heaps without dead items, so removals cannot grow memory unboundedly."""
        for level in range(LEVELS):
            self._by_score[level] = [t for t in self._by_score[level] if _live_at(t[2], level)]
            self._by_due[level] = [t for t in self._by_due[level] if _live_at(t[2], level)]
            heapq.heapify(self._by_score[level])
            heapq.heapify(self._by_due[level])
        self._stale = 0


def _live_at(entry: _Entry, level: int) -> bool:
    return entry.alive and entry.level == level
