"""A thread-safe, bounded in-memory cache level with TTLs, stats and the adaptive policy."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from vault_bmad.cache.level import CacheLevel
from vault_bmad.cache.policy import Entry
from vault_bmad.cache.sketch import spread_hash

EvictionListener = Callable[[Entry], None]


class MemoryCache(CacheLevel):
    """L1 and L2: a dict of entries guarded by one lock, ordered by `AdaptiveTinyLfu`.

    A hit is a dict lookup, an expiry check and two counter increments. `on_evict`, if
    given, hears about every live entry the policy drops (the tiered cache uses it to
    hand the entry to the next level); it is called after the lock is released.
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
        super().__init__(name, capacity, ttl, clock)
        self._on_evict = on_evict

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
                    self._forget(entry)
                    return entry.value
                self._drop_expired(entry)
            self._misses += 1
            self._policy.on_miss(spread_hash(key))
        return default

    def peek(self, key: Hashable, default: object = None) -> object:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at > self._clock():
                return entry.value
        return default

    def set(
        self, key: Hashable, value: object, ttl: float | None = None, *, promoted: bool = False
    ) -> None:
        """Store `value`; `ttl` seconds overrides the level's own TTL. `promoted`: the level
        below held it and a hit moved it up (see `Entry.promoted`)."""
        with self._lock:
            now = self._clock()
            expires_at = self._expires_at(ttl, now)
            entry = self._entries.get(key)
            if entry is not None:
                entry.value = value
                entry.expires_at = expires_at
                return
            on_evict = self._on_evict
            evicted: list[Entry] | None = [] if on_evict is not None else None
            entry = Entry(key, value, spread_hash(key), expires_at)
            if promoted:
                entry.promoted = True
            self._admit(entry, now, evicted)
        if on_evict is not None and evicted:
            for old in evicted:
                on_evict(old)

    def restore(self, key: Hashable, value: object, expires_at: float) -> None:
        """Take back a copy of `key` that this level dropped while the level above held
        it, now that the level above lets it go: a second chance at admission, as a
        restored entry (see `Entry.restored`). It expires at `expires_at` or at this
        level's TTL from now, whichever comes first; a copy still here is left as it is.
        """
        with self._lock:
            if key in self._entries:
                return
            now = self._clock()
            expires_at = min(expires_at, self._expires_at(None, now))
            if expires_at > now:
                self._admit(Entry(key, value, spread_hash(key), expires_at, restored=True), now)

    def reinstate(self, key: Hashable, value: object) -> None:
        """Take `key` back into the policy's main, past the window and the duel: this level
        held it before a hit moved it up, the level above admitted it too and has now let
        it go (the exclusive arrangement). A copy still here is left as it is."""
        with self._lock:
            if key in self._entries:
                return
            now = self._clock()
            entry = Entry(key, value, spread_hash(key), self._expires_at(None, now))
            self._admit(entry, now, readmit=True)

    def delete(self, key: Hashable) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            self._forget(entry)
            return entry.expires_at > self._clock()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and entry.expires_at > self._clock()

    def expire(self) -> int:
        with self._lock:
            now = self._clock()
            expired = [entry for entry in self._entries.values() if entry.expires_at <= now]
            for entry in expired:
                self._drop_expired(entry)
            return len(expired)

    def close(self) -> None:
        """Nothing to release: the level lives in memory only."""

    def _discard(self, key: Hashable) -> None:
        """Nothing to do: a value lives in its entry, which the caller drops."""

    def _discard_all(self) -> None:
        """Nothing to do: values live in the entries, which the caller drops."""
