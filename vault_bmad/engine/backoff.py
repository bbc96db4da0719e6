"""Failed tasks waiting out their backoff before they queue again.

The delay doubles per attempt from `base` up to `maximum`, with equal jitter (half the
delay fixed, half random, so retries of tasks that failed together spread out), and is
never shorter than the wait a server asked for.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator


class Backoffs:
    """Task ids by the time their retry may queue; see the module docstring."""

    def __init__(
        self, base: float, maximum: float, rng: random.Random, clock: Callable[[], float]
    ) -> None:
        self.base, self.maximum = base, maximum
        self._rng, self._clock = rng, clock
        self._until: dict[str, float] = {}  # task id -> when it may queue again
        self._heap: list[tuple[float, str]] = []  # over _until, lazily pruned

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._until

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._until))

    def __len__(self) -> int:
        return len(self._until)

    def delay(self, attempt: int) -> float:
        """The backoff after failed attempt `attempt` (1 for the first)."""
        delay = min(self.maximum, self.base * 2.0 ** (attempt - 1))
        return delay / 2 + self._rng.uniform(0, delay / 2)

    def wait(self, task_id: str, attempt: int, at_least: float | None = None) -> float:
        """Hold `task_id` for its backoff (or `at_least` seconds, if longer); returns when it
        may queue again."""
        at = self._clock() + max(self.delay(attempt), at_least or 0.0)
        self._until[task_id] = at
        heapq.heappush(self._heap, (at, task_id))
        return at

    def until(self, task_id: str) -> float | None:
        """When `task_id` may queue again, while it waits out its backoff."""
        return self._until.get(task_id)

    def drop(self, task_id: str) -> None:
        self._until.pop(task_id, None)

    def due(self) -> list[str]:
        """The tasks whose backoff has ended, taken out, in the order they end."""
        now, found = self._clock(), []
        while self._heap and self._heap[0][0] <= now:
            at, task_id = heapq.heappop(self._heap)
            if self._until.get(task_id) == at:
                del self._until[task_id]
                found.append(task_id)
        return found

    def next_end(self) -> float | None:
        """When the next backoff ends, if one has yet to."""
        now = self._clock()
        return min((at for at in self._until.values() if at > now), default=None)
