"""The dashboard's aggregations, done by SQLite: a period's attempts and samples, bucketed.

`query_digest` runs four GROUP BY queries over the store's indexed time columns and
returns a `Digest`: attempt counts and time sums by (time bucket, agent, status, cache
level), latency histogram counts by agent, and the last cache and pool sample of each
bucket. Nothing row-by-row leaves SQLite, so the cost follows the rows in the period,
and the answer's size follows the buckets. Digests of consecutive periods join.

`DigestCache` keeps the digest of a period's closed buckets (those that ended more than
`late_s` ago, which no new attempt can change) and queries only the open tail. When the
next bucket closes, a period with the same start (all of history) is extended by that
bucket alone; a sliding period (the last hour, the last day) is queried whole again once
per bucket, not once per request.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from cachetools import LRUCache

from vault_bmad.metrics.histogram import bin_sql
from vault_bmad.metrics.records import WORKFLOW_RUNTIME
from vault_bmad.metrics.store import Store

_GROUPS_SQL = """
SELECT CAST(ended_at / :bucket AS INTEGER) * :bucket AS slot, agent, status, cache,
       COUNT(*) AS count,
       TOTAL(max(started_at - queued_at, 0)) AS wait_s,
       TOTAL(max(ended_at - queued_at, 0)) AS latency_s,
       TOTAL(max(ended_at - started_at, 0)) AS run_s
FROM attempts
WHERE ended_at >= :since AND ended_at < :until AND runtime != :workflow
GROUP BY slot, agent, status, cache
ORDER BY slot
"""
_BINS_SQL = f"""
SELECT agent, {bin_sql("ended_at - queued_at")} AS bin, COUNT(*) AS count
FROM attempts
WHERE ended_at >= :since AND ended_at < :until AND runtime != :workflow
GROUP BY agent, bin
"""
# A bare column beside MAX() comes from the row holding the maximum: the bucket's last sample.
_LEVELS_SQL = """
SELECT CAST(at / :bucket AS INTEGER) * :bucket AS slot, level, MAX(at) AS at,
       hits, misses, evictions, expirations, size
FROM cache_samples WHERE at >= :since AND at < :until
GROUP BY slot, level ORDER BY slot, level
"""
_POOL_SQL = """
SELECT CAST(at / :bucket AS INTEGER) * :bucket AS slot, MAX(at) AS at, size, busy, queued
FROM pool_samples WHERE at >= :since AND at < :until
GROUP BY slot ORDER BY slot
"""


@dataclass(frozen=True)
class AttemptGroup:
    """Attempts that ended in one bucket with the same agent, status and cache level."""

    slot: float  # the bucket's start, epoch seconds
    agent: str
    status: str
    cache: str
    count: int
    wait_s: float  # summed queue wait
    latency_s: float  # summed wait + run
    run_s: float  # summed run time


@dataclass(frozen=True)
class LatencyBin:
    agent: str
    bin: int  # see metrics.histogram
    count: int


@dataclass(frozen=True)
class LevelSample:
    """A cache level's cumulative counters at the last sample of a bucket."""

    slot: float
    level: str
    at: float
    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int


@dataclass(frozen=True)
class PoolPoint:
    """The pool at the last sample of a bucket."""

    slot: float
    at: float
    size: int
    busy: int
    queued: int


@dataclass(frozen=True)
class Digest:
    """The period `[since, until)` in buckets of `bucket_s` seconds, aligned to the epoch."""

    since: float
    until: float
    bucket_s: float
    groups: tuple[AttemptGroup, ...] = ()
    bins: tuple[LatencyBin, ...] = ()
    levels: tuple[LevelSample, ...] = ()
    pool: tuple[PoolPoint, ...] = ()

    def joined(self, later: Digest) -> Digest:
        """This period followed by `later`, which starts where this one ends."""
        if later.since != self.until or later.bucket_s != self.bucket_s:
            raise ValueError("only consecutive digests with the same buckets join")
        counts: dict[tuple[str, int], int] = {}
        for item in (*self.bins, *later.bins):
            key = (item.agent, item.bin)
            counts[key] = counts.get(key, 0) + item.count
        return Digest(
            since=self.since,
            until=later.until,
            bucket_s=self.bucket_s,
            groups=self.groups + later.groups,
            bins=tuple(LatencyBin(a, b, n) for (a, b), n in sorted(counts.items())),
            levels=self.levels + later.levels,
            pool=self.pool + later.pool,
        )


def query_digest(store: Store, since: float, until: float, bucket_s: float) -> Digest:
    """The digest of `[since, until)`; `since` should fall on a bucket's start."""
    if bucket_s <= 0:
        raise ValueError(f"a bucket must be positive, not {bucket_s}")
    params = {"since": since, "until": until, "bucket": bucket_s, "workflow": WORKFLOW_RUNTIME}
    return Digest(
        since=since,
        until=until,
        bucket_s=bucket_s,
        groups=tuple(AttemptGroup(**row) for row in store.query(_GROUPS_SQL, params)),
        bins=tuple(LatencyBin(**row) for row in store.query(_BINS_SQL, params)),
        levels=tuple(LevelSample(**row) for row in store.query(_LEVELS_SQL, params)),
        pool=tuple(PoolPoint(**row) for row in store.query(_POOL_SQL, params)),
    )


def earliest_attempt(store: Store) -> float | None:
    """When the first recorded attempt ended (by the ended_at index), or None."""
    rows = store.query("SELECT MIN(ended_at) AS first FROM attempts")
    first = rows[0]["first"] if rows else None
    return float(first) if first is not None else None


class DigestCache:
    """Digests with their closed buckets remembered; safe across threads."""

    def __init__(self, store: Store, *, late_s: float = 10.0, max_periods: int = 16) -> None:
        self.store = store
        self.late_s = late_s  # an attempt is recorded at most this long after it ended
        self._closed: LRUCache[tuple[float, float], Digest] = LRUCache(max_periods)
        self._lock = threading.Lock()

    def digest(self, since: float, until: float, bucket_s: float) -> Digest:
        cut = math.floor((until - self.late_s) / bucket_s) * bucket_s
        if cut <= since:
            return query_digest(self.store, since, until, bucket_s)
        closed = self._closed_part(since, cut, bucket_s)
        return closed.joined(query_digest(self.store, cut, until, bucket_s))

    def _closed_part(self, since: float, cut: float, bucket_s: float) -> Digest:
        key = (since, bucket_s)
        with self._lock:
            known = self._closed.get(key)
        if known is not None and known.until == cut:
            return known
        if known is not None and known.until < cut:
            closed = known.joined(query_digest(self.store, known.until, cut, bucket_s))
        else:
            closed = query_digest(self.store, since, cut, bucket_s)
        with self._lock:
            self._closed[key] = closed
        return closed
