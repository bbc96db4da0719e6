"""A period's figures: latency, throughput, errors, utilization, cache levels, critical path.

Pure: records in, frozen values out. An attempt's latency is its whole time, queue wait
plus run (`ended_at - queued_at`). Percentiles are nearest-rank: the p-th percentile is
the smallest measured value with at least p% of the values at or below it, so it is
always a value that was measured.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Protocol, TypeVar

from vault_bmad.metrics.records import Attempt, CacheSample

MISS = "miss"  # an attempt's `cache` when no level served it


@dataclass(frozen=True)
class Overall:
    since: float
    until: float
    attempts: int
    tasks: int
    done: int
    failed: int  # every attempt that did not end done: failed, timeout
    error_rate: float
    throughput_per_min: float  # attempts ended done, per minute of the period
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    latency_mean_s: float | None
    wait_share: float | None  # the part of all latency spent queued
    mean_wait_s: float | None
    hit_rate: float | None  # attempts served by any cache level
    utilization: float  # busy time over all agents' capacity and the period


@dataclass(frozen=True)
class AgentFigures:
    agent: str
    capacity: int
    attempts: int
    done: int
    failed: int
    error_rate: float
    utilization: float  # busy time over capacity × the period
    busy_s: float  # run time inside the period
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_mean_s: float | None
    wait_share: float | None


@dataclass(frozen=True)
class LevelFigures:
    level: str
    hits: int
    misses: int  # lookups that reached this level and missed it
    hit_rate: float | None
    source: str  # "samples": the level's counters; "attempts": which level served each


@dataclass(frozen=True)
class TaskFigures:
    task_id: str
    agent: str  # of its last attempt in the period
    status: str  # of its last attempt
    attempts: int
    started: float  # its first attempt's start
    ended: float  # its last attempt's end
    run_s: float  # its attempts' run time, summed

    @property
    def span_s(self) -> float:
        return self.ended - self.started


def percentile(values: Iterable[float], percent: int) -> float | None:
    """Nearest rank: the smallest value with at least `percent`% of values at or below it."""
    return _ranked(sorted(values), percent)


def _ranked(ordered: Sequence[float], percent: int) -> float | None:
    """`percentile` of values already in ascending order."""
    if not ordered:
        return None
    rank = max(1, -(-percent * len(ordered) // 100))  # ceil, in integers
    return ordered[rank - 1]


def latency(attempt: Attempt) -> float:
    d = attempt.ended_at - attempt.queued_at
    return d if d > 0.0 else 0.0


def wait(attempt: Attempt) -> float:
    d = attempt.started_at - attempt.queued_at
    return d if d > 0.0 else 0.0


def run_time(attempt: Attempt) -> float:
    d = attempt.ended_at - attempt.started_at
    return d if d > 0.0 else 0.0


def busy_time(attempt: Attempt, since: float, until: float) -> float:
    """Run time inside the period."""
    end = attempt.ended_at if attempt.ended_at < until else until
    start = attempt.started_at if attempt.started_at > since else since
    return end - start if end > start else 0.0


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def level_key(level: str) -> list[str | int]:
    """Digit runs compare as numbers, so "L2" sorts before "L10"."""
    parts = re.split(r"(\d+)", level)
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(parts)]


class _LevelSample(Protocol):
    """A sample of one cache level's counters (a record, or a row of a digest)."""

    @property
    def level(self) -> str: ...

    @property
    def at(self) -> float: ...


SampleT = TypeVar("SampleT", bound=_LevelSample)


def samples_by_level(samples: Iterable[SampleT]) -> dict[str, list[SampleT]]:
    """Each cache level's samples in time order, the levels in `level_key` order."""
    grouped: dict[str, list[SampleT]] = defaultdict(list)
    for sample in samples:
        grouped[sample.level].append(sample)
    return {
        level: sorted(grouped[level], key=attrgetter("at"))
        for level in sorted(grouped, key=level_key)
    }


def counter_growth(before: int, after: int) -> int:
    """How much a cumulative counter grew between two samples; a drop is a restart,
    counting again from zero."""
    return after - before if after >= before else after


def total_growth(counts: Iterable[int]) -> int:
    """How much a cumulative counter grew over its samples, in order."""
    return sum(counter_growth(a, b) for a, b in itertools.pairwise(counts))


def level_lookups(
    served: Mapping[str, int], levels: Iterable[str] | None = None
) -> list[tuple[str, int, int]]:
    """(level, hits, lookups that reached it) per cache level, from attempts counted by the
    level that served them (`MISS` for none). Levels are tried in order, so a level sees
    every lookup the levels before it missed. `levels` defaults to those that served any."""
    if levels is None:
        levels = sorted((name for name in served if name != MISS), key=level_key)
    reaching = sum(served.values())
    found = []
    for level in levels:
        hits = served.get(level, 0)
        found.append((level, hits, reaching))
        reaching -= hits
    return found


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _latencies(attempts: Sequence[Attempt]) -> list[float]:
    return [d if d > 0.0 else 0.0 for d in [a.ended_at - a.queued_at for a in attempts]]


def _waits(attempts: Sequence[Attempt]) -> list[float]:
    return [d if d > 0.0 else 0.0 for d in [a.started_at - a.queued_at for a in attempts]]


def agent_figures(
    agent: str, capacity: int, attempts: Sequence[Attempt], since: float, until: float
) -> AgentFigures:
    latencies = _latencies(attempts)
    ordered = sorted(latencies)
    done = sum(1 for a in attempts if a.status == "done")
    busy = sum([busy_time(a, since, until) for a in attempts])
    return AgentFigures(
        agent=agent,
        capacity=capacity,
        attempts=len(attempts),
        done=done,
        failed=len(attempts) - done,
        error_rate=ratio(len(attempts) - done, len(attempts)) or 0.0,
        utilization=ratio(busy, capacity * (until - since)) or 0.0,
        busy_s=busy,
        latency_p50_s=_ranked(ordered, 50),
        latency_p95_s=_ranked(ordered, 95),
        latency_mean_s=_mean(latencies),
        wait_share=ratio(sum(_waits(attempts)), sum(latencies)),
    )


@dataclass(slots=True)
class _TaskTally:
    """A task's attempts so far, while `task_figures` reads them."""

    first_start: float
    last: Attempt
    tries: int
    run_s: float


def task_figures(attempts: Sequence[Attempt]) -> tuple[TaskFigures, ...]:
    """One row per task, in order of start."""
    tallies: dict[str, _TaskTally] = {}
    for a in attempts:
        tally = tallies.get(a.task_id)
        if tally is None:
            tallies[a.task_id] = _TaskTally(a.started_at, a, 1, run_time(a))
            continue
        tally.tries += 1
        tally.run_s += run_time(a)
        if a.started_at < tally.first_start:
            tally.first_start = a.started_at
        if (a.ended_at, a.attempt) > (tally.last.ended_at, tally.last.attempt):
            tally.last = a
    figures = [
        TaskFigures(
            task_id, t.last.agent, t.last.status, t.tries, t.first_start, t.last.ended_at, t.run_s
        )
        for task_id, t in tallies.items()
    ]
    figures.sort(key=attrgetter("started", "task_id"))
    return tuple(figures)


def overall_figures(
    attempts: Sequence[Attempt],
    tasks: Sequence[TaskFigures],
    agents: Sequence[AgentFigures],
    since: float,
    until: float,
) -> Overall:
    latencies, waits = _latencies(attempts), _waits(attempts)
    ordered = sorted(latencies)
    done = sum(1 for a in attempts if a.status == "done")
    capacity_s = sum(agent.capacity for agent in agents) * (until - since)
    hits = sum(1 for a in attempts if a.cache != MISS)
    return Overall(
        since=since,
        until=until,
        attempts=len(attempts),
        tasks=len(tasks),
        done=done,
        failed=len(attempts) - done,
        error_rate=ratio(len(attempts) - done, len(attempts)) or 0.0,
        throughput_per_min=ratio(done, (until - since) / 60.0) or 0.0,
        latency_p50_s=_ranked(ordered, 50),
        latency_p95_s=_ranked(ordered, 95),
        latency_p99_s=_ranked(ordered, 99),
        latency_mean_s=_mean(latencies),
        wait_share=ratio(sum(waits), sum(latencies)),
        mean_wait_s=_mean(waits),
        hit_rate=ratio(hits, len(attempts)),
        utilization=ratio(sum(agent.busy_s for agent in agents), capacity_s) or 0.0,
    )


def cache_levels(
    attempts: Sequence[Attempt], samples: Sequence[CacheSample], since: float, until: float
) -> tuple[LevelFigures, ...]:
    """Hit rate by level: from the samples when they show lookups in the period, else attempts."""
    return _levels_from_samples(samples, since, until) or _levels_from_attempts(attempts)


def _levels_from_samples(
    samples: Sequence[CacheSample], since: float, until: float
) -> tuple[LevelFigures, ...]:
    """Hits and misses by level from the counters' increases in the period; () if none."""
    levels = []
    in_period = (sample for sample in samples if since <= sample.at < until)
    for level, ordered in samples_by_level(in_period).items():
        hits = total_growth(s.hits for s in ordered)
        misses = total_growth(s.misses for s in ordered)
        levels.append(LevelFigures(level, hits, misses, ratio(hits, hits + misses), "samples"))
    return tuple(levels) if any(level.hits + level.misses for level in levels) else ()


def _levels_from_attempts(attempts: Sequence[Attempt]) -> tuple[LevelFigures, ...]:
    return tuple(
        LevelFigures(level, hits, reaching - hits, ratio(hits, reaching), "attempts")
        for level, hits, reaching in level_lookups(Counter(a.cache for a in attempts))
    )


def critical_path(
    tasks: Sequence[TaskFigures],
    dependencies: Mapping[str, Sequence[str]],
    *,
    linked_only: bool = False,
) -> tuple[tuple[str, ...], float]:
    """The longest chain of the period's tasks by span, dependencies first, and its length;
    with `linked_only`, the longest of two tasks or more, however long a lone task is.

    `tasks` come in order of start, so one pass finds it: a task extends the longest chain
    among its dependencies that started before it. A dependency outside the period, or
    that started later (it ran again), is no link; so a loop cannot arise. Of equal
    chains, the first found.
    """
    if not dependencies:
        return (), 0.0
    length: dict[str, float] = {}  # of the longest chain ending with the task
    before: dict[str, str | None] = {}
    for task in tasks:
        links = [dep for dep in dependencies.get(task.task_id, ()) if dep in length]
        previous = max(links, key=length.__getitem__) if links else None
        before[task.task_id] = previous
        chained = length[previous] if previous is not None else 0.0
        length[task.task_id] = chained + task.ended - task.started
    ends = [task for task in length if before[task] is not None] if linked_only else length
    if not ends:
        return (), 0.0
    path = [max(ends, key=length.__getitem__)]
    while (previous := before[path[-1]]) is not None:
        path.append(previous)
    return tuple(reversed(path)), length[path[0]]
