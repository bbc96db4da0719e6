"""A digest's figures: totals, time series, per-agent figures and cache levels. Pure.

The definitions follow `metrics.figures`, so the dashboard and the report agree: an
attempt's latency is queue wait plus run; the error rate counts every attempt that did
not end done; throughput counts attempts that ended done, per minute; utilization is
run time over capacity × time (here run time counts in the bucket where it ended).
Percentiles come from the digest's histogram, within `histogram.RELATIVE_ERROR`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vault_bmad.metrics.figures import (
    MISS,
    counter_growth,
    level_key,
    level_lookups,
    ratio,
    samples_by_level,
    total_growth,
)
from vault_bmad.metrics.histogram import merge_counts, percentiles
from vault_bmad.metrics.queries import AttemptGroup, Digest, LevelSample


@dataclass(frozen=True)
class Totals:
    attempts: int
    done: int
    failed: int
    error_rate: float | None
    throughput_per_min: float
    hit_rate: float | None  # attempts served by any cache level
    mean_wait_s: float | None
    wait_share: float | None  # the part of all latency spent queued
    mean_latency_s: float | None
    latency_s: dict[str, float] = field(default_factory=dict)  # "p50", "p90", "p95", "p99"


@dataclass(frozen=True)
class AgentPeriod:
    agent: str
    capacity: int
    attempts: int
    done: int
    error_rate: float | None
    busy_s: float
    utilization: float
    mean_wait_s: float | None
    latency_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TimeSeries:
    """One value per bucket, at the bucket's start (epoch seconds)."""

    times: tuple[float, ...]
    values: dict[str, tuple[float | None, ...]]


@dataclass(frozen=True)
class LevelTotals:
    level: str
    hits: int
    misses: int
    evictions: int
    size: int | None  # entries at the last sample; None when only attempts tell
    hit_rate: float | None
    source: str  # "samples" or "attempts"


def bucket_times(digest: Digest) -> tuple[float, ...]:
    """Every bucket's start in the period, gaps included."""
    first = digest.since - digest.since % digest.bucket_s
    count = max(0, int(-(-(digest.until - first) // digest.bucket_s)))
    return tuple(first + n * digest.bucket_s for n in range(count))


def latency_counts(digest: Digest, agent: str | None = None) -> dict[int, int]:
    """Histogram counts by bin, for one agent or all."""
    return merge_counts(
        *({b.bin: b.count} for b in digest.bins if agent is None or b.agent == agent)
    )


def totals(digest: Digest) -> Totals:
    groups = digest.groups
    attempts = sum(g.count for g in groups)
    done = sum(g.count for g in groups if g.status == "done")
    latency = sum(g.latency_s for g in groups)
    wait = sum(g.wait_s for g in groups)
    minutes = (digest.until - digest.since) / 60.0
    return Totals(
        attempts=attempts,
        done=done,
        failed=attempts - done,
        error_rate=ratio(attempts - done, attempts),
        throughput_per_min=done / minutes if minutes > 0 else 0.0,
        hit_rate=ratio(sum(g.count for g in groups if g.cache != MISS), attempts),
        mean_wait_s=ratio(wait, attempts),
        wait_share=ratio(wait, latency),
        mean_latency_s=ratio(latency, attempts),
        latency_s=percentiles(latency_counts(digest)),
    )


def attempt_series(digest: Digest) -> TimeSeries:
    """Per bucket: done and failed per minute, cache hit share, mean queue wait."""
    times = bucket_times(digest)
    by_slot: dict[float, list[AttemptGroup]] = defaultdict(list)
    for group in digest.groups:
        by_slot[group.slot].append(group)
    minutes = digest.bucket_s / 60.0
    done, failed, hits, waits = [], [], [], []
    for slot in times:
        groups = by_slot.get(slot, [])
        count = sum(g.count for g in groups)
        ok = sum(g.count for g in groups if g.status == "done")
        done.append(ok / minutes)
        failed.append((count - ok) / minutes)
        hits.append(ratio(sum(g.count for g in groups if g.cache != MISS), count))
        waits.append(ratio(sum(g.wait_s for g in groups), count))
    return TimeSeries(
        times,
        {
            "done_per_min": tuple(done),
            "failed_per_min": tuple(failed),
            "hit_rate": tuple(hits),
            "mean_wait_s": tuple(waits),
        },
    )


def agent_periods(digest: Digest, capacities: Mapping[str, int]) -> tuple[AgentPeriod, ...]:
    """Every agent in `capacities` or in the digest, by id."""
    by_agent: dict[str, list[AttemptGroup]] = defaultdict(list)
    for group in digest.groups:
        by_agent[group.agent].append(group)
    span = digest.until - digest.since
    found = []
    for agent in sorted(set(capacities) | set(by_agent)):
        groups = by_agent.get(agent, [])
        capacity = max(1, capacities.get(agent, 1))
        count = sum(g.count for g in groups)
        done = sum(g.count for g in groups if g.status == "done")
        busy = sum(g.run_s for g in groups)
        found.append(
            AgentPeriod(
                agent=agent,
                capacity=capacity,
                attempts=count,
                done=done,
                error_rate=ratio(count - done, count),
                busy_s=busy,
                utilization=ratio(busy, capacity * span) or 0.0,
                mean_wait_s=ratio(sum(g.wait_s for g in groups), count),
                latency_s=percentiles(latency_counts(digest, agent)),
            )
        )
    return tuple(found)


def utilization_grid(
    digest: Digest, capacities: Mapping[str, int]
) -> tuple[tuple[str, ...], tuple[float, ...], tuple[tuple[float, ...], ...]]:
    """(agents, bucket starts, utilization per agent per bucket) for a heatmap."""
    times = bucket_times(digest)
    busy: dict[tuple[str, float], float] = defaultdict(float)
    for group in digest.groups:
        busy[(group.agent, group.slot)] += group.run_s
    agents = tuple(sorted(set(capacities) | {agent for agent, _ in busy}))
    rows = tuple(
        tuple(
            busy.get((agent, slot), 0.0) / (max(1, capacities.get(agent, 1)) * digest.bucket_s)
            for slot in times
        )
        for agent in agents
    )
    return agents, times, rows


def level_series(digest: Digest) -> dict[str, TimeSeries]:
    """Per cache level: hit rate, evictions and size per bucket, from the level's samples;
    without samples, the hit rate from the level that served each attempt."""
    if not digest.levels:
        return _levels_from_attempts(digest)
    samples: dict[str, dict[float, LevelSample]] = defaultdict(dict)
    for sample in digest.levels:
        samples[sample.level][sample.slot] = sample
    times = bucket_times(digest)
    series = {}
    for level in sorted(samples, key=level_key):
        previous: LevelSample | None = None
        rates: list[float | None] = []
        evictions: list[float | None] = []
        sizes: list[float | None] = []
        for slot in times:
            found = samples[level].get(slot)
            if found is None:
                rates.append(None)
                evictions.append(None)
                sizes.append(None)
                continue
            hits = counter_growth(previous.hits, found.hits) if previous else 0
            misses = counter_growth(previous.misses, found.misses) if previous else 0
            rates.append(ratio(hits, hits + misses))
            evictions.append(
                float(counter_growth(previous.evictions, found.evictions)) if previous else None
            )
            sizes.append(float(found.size))
            previous = found
        series[level] = TimeSeries(
            times, {"hit_rate": tuple(rates), "evictions": tuple(evictions), "size": tuple(sizes)}
        )
    return series


def _levels_from_attempts(digest: Digest) -> dict[str, TimeSeries]:
    """Levels are tried in order: a level sees every lookup the levels before it missed."""
    served: dict[float, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for group in digest.groups:
        served[group.slot][group.cache] += group.count
    levels = sorted({g.cache for g in digest.groups if g.cache != MISS}, key=level_key)
    times = bucket_times(digest)
    rates: dict[str, list[float | None]] = {level: [] for level in levels}
    for slot in times:
        for level, hits, reaching in level_lookups(served.get(slot, {}), levels):
            rates[level].append(ratio(hits, reaching))
    return {level: TimeSeries(times, {"hit_rate": tuple(rates[level])}) for level in levels}


def level_totals(digest: Digest) -> tuple[LevelTotals, ...]:
    """Each level over the whole period: counter increases and the last size."""
    if not digest.levels:
        return _level_totals_from_attempts(digest.groups)
    found = []
    for level, ordered in samples_by_level(digest.levels).items():
        hits = total_growth(s.hits for s in ordered)
        misses = total_growth(s.misses for s in ordered)
        evictions = total_growth(s.evictions for s in ordered)
        rate = ratio(hits, hits + misses)
        found.append(LevelTotals(level, hits, misses, evictions, ordered[-1].size, rate, "samples"))
    return tuple(found)


def _level_totals_from_attempts(groups: Iterable[AttemptGroup]) -> tuple[LevelTotals, ...]:
    served: dict[str, int] = defaultdict(int)
    for group in groups:
        served[group.cache] += group.count
    return tuple(
        LevelTotals(level, hits, reaching - hits, 0, None, ratio(hits, reaching), "attempts")
        for level, hits, reaching in level_lookups(served)
    )


def served_by_level(digest: Digest) -> dict[str, int]:
    """Attempts by the cache level that served them ("miss" for none), in level order."""
    served: dict[str, int] = defaultdict(int)
    for group in digest.groups:
        served[group.cache] += group.count
    return {level: served[level] for level in sorted(served, key=level_key)}


def pool_series(digest: Digest) -> TimeSeries:
    """The pool's size, busy workers and queue at each sampled bucket."""
    points = sorted(digest.pool, key=lambda p: p.at)
    return TimeSeries(
        tuple(p.at for p in points),
        {
            "size": tuple(float(p.size) for p in points),
            "busy": tuple(float(p.busy) for p in points),
            "queued": tuple(float(p.queued) for p in points),
        },
    )
