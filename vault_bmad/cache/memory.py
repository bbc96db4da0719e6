"""A thread-safe, bounded in-memory cache level with TTLs, stats and the adaptive policy."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable

from vault_bmad.cache.level import LevelStats
from vault_bmad.cache.policy import AdaptiveTinyLfu, Entry
from vault_bmad.cache.sketch import spread_hash

EvictionListener = Callable[[Hashable, object], None]


class MemoryCache:
    """L1 and L2: a dict of entries guarded by one lock, ordered by `AdaptiveTinyLfu`.

    A hit is a dict lookup, an expiry check and two counter increments. `ttl` is in
    seconds of `clock`; None keeps entries until the policy drops them. `on_evict`, if
    given, hears about every live entry the policy drops (the tiered cache uses it to
    demote into the next level); it is called after the lock is released.
    """

    def __init__(
        self,
        capacity: int,
        ttl: float | None = None,
        *,
        name: str = "memory",
        clock: Callable[[], float] = time.monotonic,
        on_evict: EvictionListener | None = None,
    ) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive, not {ttl}")
        self.name = name
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._on_evict = on_evict
        self._policy = AdaptiveTinyLfu(capacity)
        self._entries: dict[Hashable, Entry] = {}
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._expirations = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def ttl(self) -> float | None:
        return self._ttl

    def get(self, key: Hashable, default: object = None) -> object:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if entry.expires_at > self._clock():
                    entry.hits += 1
                    self._hits += 1
                    return entry.value
                self._drop_expired(entry)
            self._misses += 1
            self._policy.on_miss(spread_hash(key))
        return default

    def take(self, key: Hashable, default: object = None) -> object:
        """Like `get`, but a hit also removes the entry (to move it to another level)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if entry.expires_at > self._clock():
                    self._hits += 1
                    entry.hits += 1  # banked into the sketch by remove()
                    del self._entries[key]
                    self._policy.remove(entry)
                    return entry.value
                self._drop_expired(entry)
            self._misses += 1
            self._policy.on_miss(spread_hash(key))
        return default

    def peek(self, key: Hashable, default: object = None) -> object:
        """The live value for `key` without counting a hit or a miss."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at > self._clock():
                return entry.value
        return default

    def set(self, key: Hashable, value: object, ttl: float | None = None) -> None:
        ttl = self._ttl if ttl is None else ttl
        with self._lock:
            now = self._clock()
            expires_at = math.inf if ttl is None else now + ttl
            entry = self._entries.get(key)
            if entry is not None:
                entry.value = value
                entry.expires_at = expires_at
                return
            entry = Entry(key, value, spread_hash(key), expires_at)
            self._entries[key] = entry
            dropped = self._policy.insert(entry)
            evicted: list[Entry] = []
            for old in dropped:
                del self._entries[old.key]
                if old.expires_at <= now:
                    self._expirations += 1
                else:
                    self._evictions += 1
                    evicted.append(old)
        if self._on_evict is not None:
            for old in evicted:
                self._on_evict(old.key, old.value)

    def delete(self, key: Hashable) -> bool:
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                return False
            self._policy.remove(entry)
            return entry.expires_at > self._clock()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and entry.expires_at > self._clock()

    def __len__(self) -> int:
        return len(self._entries)

    def expire(self) -> int:
        with self._lock:
            now = self._clock()
            expired = [entry for entry in self._entries.values() if entry.expires_at <= now]
            for entry in expired:
                self._drop_expired(entry)
            return len(expired)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._policy.clear()

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
            )

    def _drop_expired(self, entry: Entry) -> None:
        del self._entries[entry.key]
        self._policy.remove(entry)
        self._expirations += 1
