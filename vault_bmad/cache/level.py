"""What every cache level is: the base of the memory and disk levels, and its counters."""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass

from vault_bmad.cache.policy import AdaptiveTinyLfu, Entry


@dataclass(frozen=True)
class LevelStats:
    """A snapshot of one level's counters since it was created."""

    name: str
    hits: int
    misses: int
    evictions: int  # entries dropped by the policy to make room
    expirations: int  # entries dropped because their TTL had passed
    size: int
    capacity: int
    ghost_hits: int = 0  # misses on keys dropped for room lately: a larger level would hit

    @property
    def requests(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "hit_rate": self.hit_rate}


class CacheLevel(ABC):
    """One bounded level of keys to values with TTLs, ordered by `AdaptiveTinyLfu`; its
    counters and `stats()` live here, once for every level (memory, disk).

    `ttl` is in seconds of `clock`; None keeps entries until the policy drops them. Every
    method holds the level's one lock, so the policy and the entries agree.
    """

    def __init__(
        self, name: str, capacity: int, ttl: float | None, clock: Callable[[], float]
    ) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive, not {ttl}")
        self.name = name
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._policy = AdaptiveTinyLfu(capacity)
        self._entries: dict[Hashable, Entry] = {}  # the policy's bookkeeping, per key
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._evictions = 0  # entries dropped by the policy to make room
        self._expirations = 0  # entries dropped because their TTL had passed

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def ttl(self) -> float | None:
        return self._ttl

    @abstractmethod
    def get(self, key: Hashable, default: object = None) -> object:
        """The value stored for `key`, counted as a hit or a miss; `default` if absent."""

    @abstractmethod
    def peek(self, key: Hashable, default: object = None) -> object:
        """The live value for `key` without counting a hit or a miss."""

    @abstractmethod
    def set(self, key: Hashable, value: object, ttl: float | None = None) -> None:
        """Store `value`; `ttl` seconds overrides the level's own TTL."""

    @abstractmethod
    def delete(self, key: Hashable) -> bool:
        """Remove `key`; True if a live entry was there."""

    @abstractmethod
    def __contains__(self, key: Hashable) -> bool:
        """Whether a live entry exists, without counting a hit or a miss."""

    @abstractmethod
    def expire(self) -> int:
        """Drop every expired entry now; return how many were dropped."""

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._discard_all()
            self._entries.clear()
            self._policy.clear()

    @abstractmethod
    def close(self) -> None:
        """Release what the level holds outside the process."""

    def stats(self) -> LevelStats:
        with self._lock:
            return LevelStats(
                name=self.name,
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                expirations=self._expirations,
                size=len(self._entries),
                capacity=self._capacity,
                ghost_hits=self._policy.ghost_hits,
            )

    def _expires_at(self, ttl: float | None, now: float) -> float:
        """When an entry set now expires: `ttl`, else the level's TTL, from `now`."""
        ttl = self._ttl if ttl is None else ttl
        return math.inf if ttl is None else now + ttl

    def _admit(
        self,
        entry: Entry,
        now: float,
        evicted: list[Entry] | None = None,
        *,
        readmit: bool = False,
    ) -> None:
        """Track a new entry (`readmit`: straight into the policy's main, see
        `AdaptiveTinyLfu.readmit`) and drop what the policy pushes out for it, counting each
        as expired or evicted; the evicted ones still live go to `evicted`, if given (no
        list is made on a miss nobody listens to). Lock held."""
        self._entries[entry.key] = entry
        policy = self._policy
        for old in policy.readmit(entry) if readmit else policy.insert(entry):
            del self._entries[old.key]
            self._discard(old.key)
            if old.expires_at <= now:
                self._expirations += 1
            else:
                self._evictions += 1
                if evicted is not None:
                    evicted.append(old)

    def _forget(self, entry: Entry) -> None:
        """Drop a tracked entry from the level and its policy, uncounted. Lock held."""
        del self._entries[entry.key]
        self._policy.remove(entry)
        self._discard(entry.key)

    def _drop_expired(self, entry: Entry) -> None:
        self._forget(entry)
        self._expirations += 1

    @abstractmethod
    def _discard(self, key: Hashable) -> None:
        """Remove a key's value from where the level keeps it. Lock held."""

    @abstractmethod
    def _discard_all(self) -> None:
        """Remove every value from where the level keeps them. Lock held."""
