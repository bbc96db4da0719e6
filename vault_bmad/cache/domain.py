"""Named in-memory caches for the domain: agent profiles, workflow templates, notes, renders.

They use the same level and policy as L1 and L2. Key them by content or by file identity:
a parsed note by `file_key` (path, mtime and size), so an edited note misses by itself.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from vault_bmad.cache.level import LevelStats
from vault_bmad.cache.memory import MemoryCache

DOMAIN_CACHE_NAMES = ("agent-profiles", "workflow-templates", "parsed-notes", "rendered-templates")


def named_cache(
    name: str,
    capacity: int = 1_000,
    ttl: float | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> MemoryCache:
    """A bounded, thread-safe in-memory cache whose stats carry `name`."""
    return MemoryCache(capacity, ttl, name=name, clock=clock)


def file_key(path: Path | str) -> tuple[str, int, int]:
    """(path, mtime in ns, size): changes whenever the file is rewritten."""
    status = os.stat(path)
    return (os.fspath(path), status.st_mtime_ns, status.st_size)


class NamedCaches:
    """One process's domain caches, made on first use and listed together for metrics."""

    def __init__(
        self,
        capacity: int = 1_000,
        ttl: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._caches: dict[str, MemoryCache] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> MemoryCache:
        with self._lock:
            cache = self._caches.get(name)
            if cache is None:
                cache = self._caches[name] = named_cache(
                    name, self._capacity, self._ttl, clock=self._clock
                )
            return cache

    def stats(self) -> list[LevelStats]:
        with self._lock:
            caches = sorted(self._caches.items())
        return [cache.stats() for _, cache in caches]
