"""The dashboard's aggregations, done by SQLite: a period's attempts and samples, bucketed.

`query_digest` runs a few GROUP BY queries over the store's indexed time columns and
returns a `metrics.digest.Digest`: attempt counts and time sums by (time bucket, agent,
status, cache level), latency histogram counts by agent, the last cache sample and the
peak pool sample of each bucket, and the seconds of each bucket the agents and the vault
had work and the agents ran (window functions merge overlapping spans). Nothing
row-by-row leaves SQLite, so the answer's size follows the buckets. Digests of
consecutive periods join.

`DigestCache` keeps the digest of a period's closed buckets (those that ended more than
`late_s` ago, which no new attempt can change) and queries only the open tail. When the
next bucket closes, a period with the same start (all of history) is extended by that
bucket alone; a sliding period (the last hour, the last day) is queried whole again once
per bucket, not once per request. An attempt ending in the tail may have been queued in
a closed bucket, so the tail's work and run time are counted again from the bucket of
its earliest queued attempt.
"""

from __future__ import annotations

import math
import threading

from cachetools import LRUCache

from vault_bmad.metrics.digest import (
    AttemptGroup,
    Digest,
    LatencyBin,
    LevelSample,
    PoolPoint,
    Spread,
    spread,
)
from vault_bmad.metrics.histogram import bin_sql
from vault_bmad.metrics.records import WORKFLOW_RUNTIME, CacheSample
from vault_bmad.metrics.store import Store

__all__ = ["Digest", "DigestCache", "cache_samples_from", "earliest_attempt", "query_digest"]

_IN_PERIOD = "ended_at >= :since AND ended_at < :until AND runtime != :workflow"
_GROUPS_SQL = f"""
SELECT CAST(ended_at / :bucket AS INTEGER) * :bucket AS slot, agent, status, cache,
       COUNT(*) AS count,
       TOTAL(max(started_at - queued_at, 0)) AS wait_s,
       TOTAL(max(ended_at - queued_at, 0)) AS latency_s
FROM attempts WHERE {_IN_PERIOD}
GROUP BY slot, agent, status, cache
ORDER BY slot
"""
_BINS_SQL = f"""
SELECT agent, {bin_sql("ended_at - queued_at")} AS bin, COUNT(*) AS count
FROM attempts WHERE {_IN_PERIOD}
GROUP BY agent, bin
"""
# Pieces of time (agent, s, e) summed by the buckets they start and end in: see Spread.
_SPREAD = """
SELECT agent, first, last, COUNT(*) AS count,
       TOTAL(min(e, (first + 1) * :bucket) - s) AS head,
       TOTAL(CASE WHEN last > first THEN e - last * :bucket ELSE 0 END) AS tail
FROM (SELECT agent, s, e, CAST(s / :bucket AS INTEGER) AS first,
             CAST(e / :bucket AS INTEGER) AS last
      FROM pieces WHERE e > s)
GROUP BY agent, first, last
"""
# Each span cut to what no earlier-starting span (of the same agent, or of any) covered.
_REACH = (
    "MAX(e) OVER (PARTITION BY {} ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
)
_WORK_SQL = f"""
WITH spans AS (
  SELECT agent, max(queued_at, :since) AS s, ended_at AS e FROM attempts WHERE {_IN_PERIOD}
), pieces AS (
  SELECT agent, max(s, coalesce({_REACH.format("agent")}, s)) AS s, e FROM spans
  UNION ALL
  SELECT NULL, max(s, coalesce({_REACH.format("NULL")}, s)), e FROM spans
)
{_SPREAD}
"""
_BUSY_SQL = f"""
WITH pieces AS (
  SELECT agent, max(started_at, :since) AS s, ended_at AS e FROM attempts WHERE {_IN_PERIOD}
)
{_SPREAD}
"""
_EARLIEST_QUEUED_SQL = f"SELECT MIN(queued_at) AS first FROM attempts WHERE {_IN_PERIOD}"
_LEVEL_COLUMNS = "hits, misses, evictions, expirations, size, ghost_hits"
# A bare column beside MAX() comes from the row holding the maximum: the bucket's last sample.
_LEVELS_SQL = f"""
SELECT CAST(at / :bucket AS INTEGER) * :bucket AS slot, level, MAX(at) AS at, {_LEVEL_COLUMNS}
FROM cache_samples WHERE at >= :since AND at < :until
GROUP BY slot, level ORDER BY slot, level
"""
_BASELINE_SQL = f"""
SELECT CAST(MAX(at) / :bucket AS INTEGER) * :bucket AS slot, level, MAX(at) AS at,
       {_LEVEL_COLUMNS}
FROM cache_samples WHERE at < :since GROUP BY level ORDER BY level
"""
_POOL_SQL = """
SELECT CAST(at / :bucket AS INTEGER) * :bucket AS slot, MAX(at) AS at,
       MAX(size) AS size, MAX(busy) AS busy, MAX(queued) AS queued
FROM pool_samples WHERE at >= :since AND at < :until
GROUP BY slot ORDER BY slot
"""


def query_digest(
    store: Store, since: float, until: float, bucket_s: float, *, origin: float | None = None
) -> Digest:
    """The digest of `[since, until)`; `since` should fall on a bucket's start.

    `origin` is where the whole period starts when this is a later part of it (the tail
    after cached buckets): spans are cut there, and the work and run time are counted
    from the bucket of the earliest attempt queued before `since`, back to `origin`.
    """
    if bucket_s <= 0:
        raise ValueError(f"a bucket must be positive, not {bucket_s}")
    start = since if origin is None else origin
    params = {"since": since, "until": until, "bucket": bucket_s, "workflow": WORKFLOW_RUNTIME}
    covered = since
    if since > start:
        first = store.query(_EARLIEST_QUEUED_SQL, params)[0]["first"]
        if first is not None and first < since:
            covered = max(start, math.floor(first / bucket_s) * bucket_s)
    spans = {**params, "since": covered}
    return Digest(
        since=since,
        until=until,
        bucket_s=bucket_s,
        groups=tuple(AttemptGroup(**row) for row in store.query(_GROUPS_SQL, params)),
        bins=tuple(LatencyBin(**row) for row in store.query(_BINS_SQL, params)),
        levels=tuple(LevelSample(**row) for row in store.query(_LEVELS_SQL, params)),
        pool=tuple(PoolPoint(**row) for row in store.query(_POOL_SQL, params)),
        work=spread((Spread(**row) for row in store.query(_WORK_SQL, spans)), bucket_s),
        busy=spread((Spread(**row) for row in store.query(_BUSY_SQL, spans)), bucket_s),
        baseline=(
            tuple(LevelSample(**row) for row in store.query(_BASELINE_SQL, params))
            if origin is None or since <= start
            else ()
        ),
        covered_from=covered,
    )


def cache_samples_from(store: Store, since: float) -> list[CacheSample]:
    """Each cache level's last sample before `since`, where its counters stood, then every
    sample from `since` on: what a period's cache figures need."""
    rows = store.query(_BASELINE_SQL, {"since": since, "bucket": 1.0})
    before = [CacheSample(**{k: v for k, v in row.items() if k != "slot"}) for row in rows]
    return [*before, *store.cache_samples(since=since)]


def earliest_attempt(store: Store) -> float | None:
    """When the first recorded attempt was queued, or None: where "all" of history starts.
    A scan of every attempt, so callers keep the answer (no later attempt is earlier)."""
    rows = store.query("SELECT MIN(queued_at) AS first FROM attempts")
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
        return closed.joined(query_digest(self.store, cut, until, bucket_s, origin=since))

    def _closed_part(self, since: float, cut: float, bucket_s: float) -> Digest:
        key = (since, bucket_s)
        with self._lock:
            known = self._closed.get(key)
        if known is not None and known.until == cut:
            return known
        if known is not None and known.until < cut:
            later = query_digest(self.store, known.until, cut, bucket_s, origin=since)
            closed = known.joined(later)
        else:
            closed = query_digest(self.store, since, cut, bucket_s)
        with self._lock:
            self._closed[key] = closed
        return closed
