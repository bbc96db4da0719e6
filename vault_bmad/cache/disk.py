"""L3: a bounded, persistent cache level on diskcache (SQLite plus files) in a given folder."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from types import TracebackType

import diskcache

from vault_bmad.cache.level import CacheLevel
from vault_bmad.cache.policy import Entry
from vault_bmad.cache.sketch import spread_hash

_MISSING = object()


class DiskCache(CacheLevel):
    """Values live on disk; the policy's bookkeeping (keys only) lives in memory.

    Each value is stored with its expiry time, measured by `clock`, which defaults to
    wall time because entries outlive the process. On opening, the keys already on disk
    are handed to the policy again (their popularity starts afresh). Values must be
    picklable. All operations hold one lock, so the policy and the disk agree.
    """

    def __init__(
        self,
        directory: Path | str,
        capacity: int = 100_000,
        ttl: float | None = 86_400.0,
        *,
        name: str = "disk",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, capacity, ttl, clock)
        self.directory = Path(directory)
        self._store = diskcache.Cache(str(self.directory), eviction_policy="none")
        with self._lock:
            for key in list(self._store.iterkeys()):
                self._track(key, math.nan)  # expiry unknown until read

    def get(self, key: Hashable, default: object = None) -> object:
        with self._lock:
            value = self._read_live(key)
            if value is _MISSING:
                self._misses += 1
                self._policy.on_miss(spread_hash(key))
                return default
            self._hits += 1
            self._entries[key].hits += 1
            return value

    def peek(self, key: Hashable, default: object = None) -> object:
        with self._lock:
            value = self._read_live(key)
            return default if value is _MISSING else value

    def set(self, key: Hashable, value: object, ttl: float | None = None) -> None:
        with self._lock:
            expires_at = self._expires_at(ttl, self._clock())
            self._store.set(key, (expires_at, value))
            entry = self._entries.get(key)
            if entry is None:
                self._track(key, expires_at)
            else:
                entry.expires_at = expires_at

    def delete(self, key: Hashable) -> bool:
        with self._lock:
            live = self._read_live(key) is not _MISSING
            entry = self._entries.get(key)
            if entry is not None:
                self._forget(entry)
            else:
                self._store.delete(key)
            return live

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return self._read_live(key) is not _MISSING

    def expire(self) -> int:
        with self._lock:
            before = self._expirations
            for key in list(self._entries):
                self._read_live(key)
            return self._expirations - before

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> DiskCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _read_live(self, key: Hashable) -> object:
        """The stored value if present and unexpired, else _MISSING; drops what expired."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= self._clock():
            self._drop_expired(entry)
            return _MISSING
        stored = self._store.get(key, default=_MISSING)
        if not (isinstance(stored, tuple) and len(stored) == 2):
            if stored is not _MISSING:  # not written by this class: not ours to serve
                self._store.delete(key)
            if entry is not None:  # removed behind our back, by another process
                self._forget(entry)
            return _MISSING
        expires_at, value = stored
        if entry is None:  # written by another process
            entry = self._track(key, expires_at)
        else:
            entry.expires_at = expires_at
        if expires_at <= self._clock():
            self._drop_expired(entry)
            return _MISSING
        return value

    def _track(self, key: Hashable, expires_at: float) -> Entry:
        entry = Entry(key, None, spread_hash(key), expires_at)
        self._admit(entry, self._clock())
        return entry

    def _discard(self, key: Hashable) -> None:
        self._store.delete(key)

    def _discard_all(self) -> None:
        self._store.clear()
