"""The multi-level cache: L1 and L2 in memory, L3 on disk, with promotion and coalescing.

L1 and L2 are inclusive by default: L2 keeps a copy of what L1 holds. L2 never sees the
hits L1 serves, so it may drop its copy of a key L1 keeps busy; when L1 then lets the key
go, L2 takes the copy back for a second chance (`MemoryCache.restore`). Exclusive levels
(an L2 hit moves up, L1's evictions move down) were measured too and lost by up to 5.5
points of hit rate (docs/benchmarks.md, "Cache policy"): each level filters admissions,
so an entry moving down must win a second duel, and one that loses it is gone from both.
Only an entry that won both, held by L2 before a hit moved it up and then admitted by L1,
goes straight back into L2's main (`MemoryCache.reinstate`).
L3 keeps a copy of everything written, so results survive a restart; it is written behind,
on a thread of its own, many entries to one disk transaction (a set costs its caller only
the memory levels; a read of a value still waiting waits for its write). A hit in a lower
level is promoted to L1. Identical computations in flight at once run once
(`get_or_compute`); a failure is never stored. Moves between levels are not atomic as a
whole: a racing reader may miss a key in transit and compute it again, which costs time
but never correctness.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar, cast

from vault_bmad.cache.disk import DiskCache
from vault_bmad.cache.level import CacheLevel, LevelStats
from vault_bmad.cache.memory import MemoryCache
from vault_bmad.cache.policy import Entry
from vault_bmad.cache.prefetch import Prefetcher, PrefetchStats

T = TypeVar("T")
Arrangement = Literal["exclusive", "inclusive"]
_MISSING = object()
COALESCED = "coalesced"  # served by waiting for an identical request in flight


@dataclass(frozen=True)
class LevelSpec:
    """How many entries a level holds, and for how many seconds (None: no expiry)."""

    capacity: int
    ttl: float | None


L1_DEFAULT = LevelSpec(1_000, 300.0)
L2_DEFAULT = LevelSpec(10_000, 3_600.0)
L3_DEFAULT = LevelSpec(100_000, 86_400.0)


@dataclass(frozen=True)
class TieredStats:
    """Plain data for metrics: each level's counters plus the tier's own."""

    levels: tuple[LevelStats, ...]
    computes: int  # calls of a compute function
    coalesced: int  # callers who waited for another's identical computation
    failures: int  # computations that raised (nothing was stored)
    prefetch: PrefetchStats | None

    @property
    def hit_rate(self) -> float:
        """Share of requests served by any level."""
        requests = self.levels[0].requests
        return sum(level.hits for level in self.levels) / requests if requests else 0.0

    def by_level(self) -> dict[str, dict[str, int]]:
        """{"L1": {"hits": n, "misses": n, ...}, ...}: the shape /metrics exports."""
        return {
            level.name: {
                "hits": level.hits,
                "misses": level.misses,
                "evictions": level.evictions,
                "expirations": level.expirations,
                "size": level.size,
                "capacity": level.capacity,
                "ghost_hits": level.ghost_hits,
            }
            for level in self.levels
        }

    def as_dict(self) -> dict[str, object]:
        return {
            "hit_rate": self.hit_rate,
            "levels": {level.name: level.as_dict() for level in self.levels},
            "computes": self.computes,
            "coalesced": self.coalesced,
            "failures": self.failures,
            "prefetch": None if self.prefetch is None else self.prefetch.as_dict(),
        }


class TieredCache:
    """L1/L2/L3 (each a `CacheLevel`) behind the same mapping-like surface. Thread-safe.

    `directory` holds L3 (None: no disk level); `l2=None` leaves out L2;
    `prefetch_threshold=None` turns prediction off. One `clock` (wall time by default,
    since L3 outlives the process) times every level.
    """

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        l1: LevelSpec = L1_DEFAULT,
        l2: LevelSpec | None = L2_DEFAULT,
        l3: LevelSpec = L3_DEFAULT,
        arrangement: Arrangement = "inclusive",
        prefetch_threshold: float | None = 0.7,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.arrangement = arrangement
        self._prefetcher = (
            None
            if prefetch_threshold is None
            else Prefetcher(prefetch_threshold, max_pending=l1.capacity)
        )
        self._l1 = MemoryCache(
            l1.capacity, l1.ttl, name="L1", clock=clock, on_evict=self._on_l1_evict
        )
        self._l2 = None if l2 is None else MemoryCache(l2.capacity, l2.ttl, name="L2", clock=clock)
        self._l3: DiskCache | None = (
            None
            if directory is None
            else DiskCache(directory, l3.capacity, l3.ttl, name="L3", clock=clock)
        )
        self._inflight: dict[Hashable, Future[object]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        # L3's writes to come: key -> value, ttl and when it was set.
        self._unwritten: dict[Hashable, tuple[object, float | None, float]] = {}
        self._l3_due = False  # a batch of L3 writes is on its way
        self._l3_writer = ThreadPoolExecutor(1, thread_name_prefix="vault-bmad-l3-writer")
        self._closed = False
        self._computes = 0
        self._coalesced = 0
        self._failures = 0

    def get(self, key: Hashable, default: object = None) -> object:
        value, _ = self._lookup(key)
        return default if value is _MISSING else value

    def set(self, key: Hashable, value: object, ttl: float | None = None) -> None:
        self._l1.set(key, value, ttl)
        if self._l2 is not None:
            if self.arrangement == "inclusive":
                self._l2.set(key, value, ttl)
            else:
                self._l2.delete(key)
        if self._l3 is not None:
            with self._lock:
                self._unwritten[key] = (value, ttl, self._clock())
                due, self._l3_due = self._l3_due, True
            if not due:
                self._l3_writer.submit(self._write_l3)

    def flush(self) -> None:
        """Wait until every value set so far is in L3 too."""
        self._l3_writer.submit(self._write_l3).result()

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> tuple[T, str]:
        """The cached value, or `compute()` stored and returned; concurrent callers share it.

        Also says where the value came from: "L1", "L2" or "L3"; "miss" when this call
        computed it; "coalesced" when it waited for an identical computation in flight.
        If `compute` raises, every caller waiting on it gets the exception and nothing
        is stored, so the next call tries again.
        """
        value, level = self._lookup(key)
        if value is not _MISSING:
            return cast(T, value), level
        with self._lock:
            running = self._inflight.get(key)
            if running is None:
                future: Future[object] = Future()
                self._inflight[key] = future
            else:
                self._coalesced += 1
        if running is not None:
            return cast(T, running.result()), COALESCED
        try:
            value, level = self._l1.peek(key, _MISSING), "L1"  # a leader may just have finished
            if value is _MISSING:
                with self._lock:
                    self._computes += 1
                value, level = compute(), "miss"
                self.set(key, value)
        except BaseException as error:
            with self._lock:
                self._failures += 1
                del self._inflight[key]
            future.set_exception(error)
            raise
        with self._lock:
            del self._inflight[key]
        future.set_result(value)
        return cast(T, value), level

    def delete(self, key: Hashable) -> bool:
        self.flush()
        found = [level.delete(key) for level in self._levels()]
        return any(found)

    def __contains__(self, key: Hashable) -> bool:
        self.flush()
        return any(key in level for level in self._levels())

    def __len__(self) -> int:
        """Entries held, counting a key once in each level that holds it."""
        self.flush()
        return sum(len(level) for level in self._levels())

    def expire(self) -> int:
        self.flush()
        return sum(level.expire() for level in self._levels())

    def clear(self) -> None:
        self.flush()
        for level in self._levels():
            level.clear()

    def stats(self) -> TieredStats:
        self.flush()
        with self._lock:
            computes, coalesced, failures = self._computes, self._coalesced, self._failures
        return TieredStats(
            levels=tuple(level.stats() for level in self._levels()),
            computes=computes,
            coalesced=coalesced,
            failures=failures,
            prefetch=None if self._prefetcher is None else self._prefetcher.stats(),
        )

    def close(self) -> None:
        if not self._closed:  # what was set is written first
            self._closed = True
            self.flush()
            self._l3_writer.shutdown(wait=True)
        for level in self._levels():
            level.close()

    def __enter__(self) -> TieredCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _levels(self) -> list[CacheLevel]:
        levels: list[CacheLevel] = [self._l1]
        if self._l2 is not None:
            levels.append(self._l2)
        if self._l3 is not None:
            levels.append(self._l3)
        return levels

    def _lookup(self, key: Hashable) -> tuple[object, str]:
        """The value and the level that held it, promoted to L1; (_MISSING, "miss") if none."""
        value = self._l1.get(key, _MISSING)
        level = "L1"
        if value is not _MISSING:
            if self._prefetcher is not None:
                self._prefetcher.on_hit(key)
        else:
            value, level = self._get_below(key)
            if value is not _MISSING:
                self._l1.set(key, value, promoted=level == "L2")
        if self._prefetcher is not None:
            self._prefetch_after(self._prefetcher, key)
        return value, level

    def _write_l3(self) -> None:
        """Write what waits into L3, in one go; it waits (and is read) until written."""
        with self._lock:
            batch = dict(self._unwritten)
        if self._l3 is not None and batch:
            self._l3.set_many((key, *entry) for key, entry in batch.items())
        with self._lock:
            for key, entry in batch.items():
                if self._unwritten.get(key) is entry:  # not set again meanwhile
                    del self._unwritten[key]
            more = self._l3_due = bool(self._unwritten)
        if more:
            self._l3_writer.submit(self._write_l3)

    def _read_l3(self, key: Hashable, *, count: bool) -> object:
        """L3's value of `key` (counting a hit or a miss when `count`), once a write of it
        still waiting is done."""
        assert self._l3 is not None
        with self._lock:
            waiting = key in self._unwritten
        if waiting:
            self.flush()
        return self._l3.get(key, _MISSING) if count else self._l3.peek(key, _MISSING)

    def _get_below(self, key: Hashable) -> tuple[object, str]:
        """Look in L2, then L3."""
        if self._l2 is not None:
            if self.arrangement == "exclusive":
                value = self._l2.take(key, _MISSING)
            else:
                value = self._l2.get(key, _MISSING)
            if value is not _MISSING:
                return value, "L2"
        if self._l3 is not None:
            value = self._read_l3(key, count=True)
            if value is not _MISSING:
                if self._l2 is not None and self.arrangement == "inclusive":
                    self._l2.set(key, value)
                return value, "L3"
        return _MISSING, "miss"

    def _on_l1_evict(self, entry: Entry) -> None:
        if self._prefetcher is not None:
            self._prefetcher.on_evict(entry.key)
        if self._l2 is None:
            return
        if self.arrangement == "inclusive":  # L2 may have dropped its copy meanwhile
            self._l2.restore(entry.key, entry.value, entry.expires_at)
        elif entry.promoted and entry.admitted:  # it won both levels' duels already
            self._l2.reinstate(entry.key, entry.value)
        else:
            self._l2.set(entry.key, entry.value)

    def _prefetch_after(self, prefetcher: Prefetcher, key: Hashable) -> None:
        """Pull the predicted successors of `key` up into L1, from L2 or L3."""
        for successor in prefetcher.observe(key):
            if successor in self._l1:
                continue
            value = _MISSING
            if self._l2 is not None:
                value = self._l2.peek(successor, _MISSING)
                if value is not _MISSING and self.arrangement == "exclusive":
                    self._l2.delete(successor)
            promoted = value is not _MISSING
            if value is _MISSING and self._l3 is not None:
                value = self._read_l3(successor, count=False)
            if value is not _MISSING:
                self._l1.set(successor, value, promoted=promoted)
                prefetcher.issued(successor)
