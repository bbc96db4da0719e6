"""Peers the project's policy is measured against: the design's score, and Bélády's OPT."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Sequence


class DesignScoreCache:
    """The design's idea: evict the lowest `0.7 * recency + 0.3 * frequency`.

    recency = 1 / (1 + age / capacity), age counted in requests since the last access;
    frequency = count / (count + 1). Both lie in (0, 1]. The exact minimum would cost a
    full scan per eviction, so, as Redis does, the victim is the lowest of `sample`
    entries drawn at random.
    """

    def __init__(self, capacity: int, *, sample: int = 16, seed: int = 0) -> None:
        self._capacity = capacity
        self._sample = sample
        self._random = random.Random(seed)
        self._last_access: dict[int, int] = {}
        self._count: dict[int, int] = {}
        self._keys: list[int] = []  # for drawing samples
        self._slot: dict[int, int] = {}
        self._now = 0

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._keys))

    def access(self, key: int) -> bool:
        """Request `key`; True on a hit. A miss admits the key, evicting if full."""
        self._now += 1
        if key in self._last_access:
            self._last_access[key] = self._now
            self._count[key] += 1
            return True
        if len(self._keys) >= self._capacity:
            self._evict(self._choose_victim())
        self._last_access[key] = self._now
        self._count[key] = 1
        self._slot[key] = len(self._keys)
        self._keys.append(key)
        return False

    def score(self, key: int) -> float:
        age = self._now - self._last_access[key]
        count = self._count[key]
        return 0.7 / (1 + age / self._capacity) + 0.3 * count / (count + 1)

    def _choose_victim(self) -> int:
        keys = self._keys
        drawn = (keys[self._random.randrange(len(keys))] for _ in range(self._sample))
        return min(drawn, key=self.score)

    def _evict(self, key: int) -> None:
        slot = self._slot.pop(key)
        last = self._keys.pop()
        if last != key:
            self._keys[slot] = last
            self._slot[last] = slot
        del self._last_access[key]
        del self._count[key]


def opt_hits(trace: Sequence[int], capacity: int) -> int:
    """Hits of Bélády's MIN with bypass: the ceiling for any policy that may refuse a key.

    On a miss the key is cached only if it is needed again sooner than the cached key
    needed furthest in the future, which it then replaces.
    """
    never = len(trace)
    next_use = [never] * len(trace)
    seen: dict[int, int] = {}
    for index in range(len(trace) - 1, -1, -1):
        key = trace[index]
        next_use[index] = seen.get(key, never)
        seen[key] = index
    cached: dict[int, int] = {}  # key -> its next use
    furthest: list[tuple[int, int]] = []  # (-next use, key), with stale items
    hits = 0
    for index, key in enumerate(trace):
        upcoming = next_use[index]
        if key in cached:
            hits += 1
            if upcoming == never:
                del cached[key]
                continue
        elif upcoming == never:
            continue
        elif len(cached) >= capacity:
            while cached.get(furthest[0][1]) != -furthest[0][0]:
                heapq.heappop(furthest)
            if -furthest[0][0] <= upcoming:
                continue
            del cached[heapq.heappop(furthest)[1]]
        cached[key] = upcoming
        heapq.heappush(furthest, (-upcoming, key))
    return hits
