"""A digest's figures: totals, per-agent figures, cache levels, and series over time. Pure.

Every figure here follows its definition in `metrics.figures` and is read from a `Digest`,
whichever way the digest was made, so the report, the dashboard, the API and /metrics
show the same numbers for the same attempts. Percentiles come from the digest's latency
histogram, within `histogram.RELATIVE_ERROR`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vault_bmad.metrics.digest import AttemptGroup, Coverage, Digest, LevelSample, bucket_times
from vault_bmad.metrics.figures import (
    MISS,
    AgentFigures,
    LevelFigures,
    Overall,
    counter_growth,
    level_key,
    level_lookups,
    ratio,
    samples_by_level,
    throughput_per_min,
    total_growth,
    utilization,
)
from vault_bmad.metrics.histogram import merge_counts, percentiles


@dataclass(frozen=True)
class TimeSeries:
    """One value per bucket, at the bucket's start (epoch seconds)."""

    times: tuple[float, ...]
    values: dict[str, tuple[float | None, ...]]


def latency_counts(digest: Digest, agent: str | None = None) -> dict[int, int]:
    """Histogram counts by bin, for one agent or all."""
    return merge_counts(
        *({b.bin: b.count} for b in digest.bins if agent is None or b.agent == agent)
    )


def _seconds(coverage: Iterable[Coverage]) -> dict[str | None, float]:
    """Seconds covered in the whole period, by agent (None: the vault)."""
    found: dict[str | None, float] = defaultdict(float)
    for piece in coverage:
        found[piece.agent] += piece.seconds
    return found


def agent_figures(digest: Digest, capacities: Mapping[str, int]) -> tuple[AgentFigures, ...]:
    """Every agent in `capacities` or in the digest, by id; an agent missing from
    `capacities` counts as capacity 1."""
    by_agent: dict[str, list[AttemptGroup]] = defaultdict(list)
    for group in digest.groups:
        by_agent[group.agent].append(group)
    work, busy = _seconds(digest.work), _seconds(digest.busy)
    found = []
    for agent in sorted(set(capacities) | set(by_agent)):
        groups = by_agent.get(agent, [])
        capacity = max(1, capacities.get(agent, 1))
        count = sum(g.count for g in groups)
        done = sum(g.count for g in groups if g.status == "done")
        waited = sum(g.wait_s for g in groups)
        latency = sum(g.latency_s for g in groups)
        found.append(
            AgentFigures(
                agent=agent,
                capacity=capacity,
                attempts=count,
                done=done,
                failed=count - done,
                error_rate=ratio(count - done, count),
                busy_s=busy.get(agent, 0.0),
                work_s=work.get(agent, 0.0),
                utilization=utilization(busy.get(agent, 0.0), capacity, work.get(agent, 0.0)),
                latency_mean_s=ratio(latency, count),
                mean_wait_s=ratio(waited, count),
                wait_share=ratio(waited, latency),
                latency_s=percentiles(latency_counts(digest, agent)),
            )
        )
    return tuple(found)


def overall(digest: Digest, agents: Iterable[AgentFigures]) -> Overall:
    """The period's totals; `agents` are the digest's `agent_figures`."""
    groups = digest.groups
    attempts = sum(g.count for g in groups)
    done = sum(g.count for g in groups if g.status == "done")
    latency = sum(g.latency_s for g in groups)
    waited = sum(g.wait_s for g in groups)
    work_s = _seconds(digest.work).get(None, 0.0)
    busy = [(a.busy_s, a.capacity * a.work_s) for a in agents]
    return Overall(
        since=digest.since,
        until=digest.until,
        attempts=attempts,
        done=done,
        failed=attempts - done,
        error_rate=ratio(attempts - done, attempts),
        work_s=work_s,
        throughput_per_min=throughput_per_min(done, work_s),
        latency_s=percentiles(latency_counts(digest)),
        latency_mean_s=ratio(latency, attempts),
        mean_wait_s=ratio(waited, attempts),
        wait_share=ratio(waited, latency),
        hit_rate=ratio(sum(g.count for g in groups if g.cache != MISS), attempts),
        busy_s=sum(b for b, _ in busy),
        utilization=ratio(sum(b for b, _ in busy), sum(c for _, c in busy)),
    )


def cache_levels(digest: Digest) -> tuple[LevelFigures, ...]:
    """Each cache level over the period: from its counters' growth when they show lookups
    (a level's first sample counts in full unless one before the period says where its
    counters stood), else from the level that served each attempt."""
    baseline = {sample.level: sample for sample in digest.baseline}
    found = []
    for level, ordered in samples_by_level(digest.levels).items():
        before = baseline.get(level)
        hits, misses = _growth(ordered, before, "hits"), _growth(ordered, before, "misses")
        found.append(
            LevelFigures(
                level,
                hits,
                misses,
                ratio(hits, hits + misses),
                "samples",
                evictions=_growth(ordered, before, "evictions"),
                size=ordered[-1].size,
                ghost_hits=_growth(ordered, before, "ghost_hits"),
            )
        )
    if any(level.hits + level.misses for level in found):
        return tuple(found)
    return tuple(
        LevelFigures(level, hits, reaching - hits, ratio(hits, reaching), "attempts")
        for level, hits, reaching in level_lookups(served_by_level(digest))
    )


def _growth(ordered: list[LevelSample], before: LevelSample | None, counter: str) -> int:
    """How much one counter of a level grew over its samples, from `before` or from zero."""
    start = getattr(before, counter) if before is not None else 0
    return total_growth((getattr(sample, counter) for sample in ordered), start)


def served_by_level(digest: Digest) -> dict[str, int]:
    """Attempts by the cache level that served them ("miss" for none), in level order."""
    served: dict[str, int] = defaultdict(int)
    for group in digest.groups:
        served[group.cache] += group.count
    return {level: served[level] for level in sorted(served, key=level_key)}


def attempt_series(digest: Digest) -> TimeSeries:
    """Per bucket: done and failed per minute of the bucket, cache hit share, mean wait."""
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


def utilization_grid(
    digest: Digest, capacities: Mapping[str, int]
) -> tuple[tuple[str, ...], tuple[float, ...], tuple[tuple[float | None, ...], ...]]:
    """(agents, bucket starts, utilization per agent per bucket) for a heatmap; None where
    the agent had no work."""
    times = bucket_times(digest)
    work = {(c.agent, c.slot): c.seconds for c in digest.work if c.agent is not None}
    busy = {(c.agent, c.slot): c.seconds for c in digest.busy}
    agents = tuple(sorted(set(capacities) | {agent for agent, _ in work if agent}))
    rows = tuple(
        tuple(
            utilization(
                busy.get((agent, slot), 0.0), capacities.get(agent, 1), work.get((agent, slot), 0.0)
            )
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
    baseline = {sample.level: sample for sample in digest.baseline}
    samples: dict[str, dict[float, LevelSample]] = defaultdict(dict)
    for sample in sorted(digest.levels, key=lambda s: s.at):
        samples[sample.level][sample.slot] = sample
    times = bucket_times(digest)
    series = {}
    for level in sorted(samples, key=level_key):
        previous = baseline.get(level)
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
            hits = counter_growth(previous.hits if previous else 0, found.hits)
            misses = counter_growth(previous.misses if previous else 0, found.misses)
            rates.append(ratio(hits, hits + misses))
            evictions.append(
                float(counter_growth(previous.evictions if previous else 0, found.evictions))
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


def pool_series(digest: Digest) -> TimeSeries:
    """The pool's peak size, busy workers and queue in each sampled bucket."""
    points = sorted(digest.pool, key=lambda p: p.at)
    return TimeSeries(
        tuple(p.at for p in points),
        {
            "size": tuple(float(p.size) for p in points),
            "busy": tuple(float(p.busy) for p in points),
            "queued": tuple(float(p.queued) for p in points),
        },
    )
