"""Named in-memory caches for the domain: agent profiles, workflow templates, notes, renders.

They use the same level and policy as L1 and L2. Key them by content or by file identity:
a parsed note by `file_key` (path, mtime and size), so an edited note misses by itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from vault_bmad.cache.memory import MemoryCache


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
