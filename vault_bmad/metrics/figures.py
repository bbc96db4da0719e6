"""Every figure a report, the dashboard, the API and /metrics show: what it means and its rule.

Pure. `DEFINITIONS` holds each figure's meaning in one line, as the report prints it and the
dashboard shows it in a tooltip; the functions here hold the rules, and `metrics.series`
applies them to a period's `Digest`, whichever way the digest was made (SQL over the store
for the dashboard, `digest.digest_of` over attempt records for a report). So a figure shown
in two places is computed once.

An attempt belongs to a period when it ended inside it. Its latency is queue wait plus run
(`ended_at - queued_at`); the time an agent "had work" is when some attempt it ran was
queued or running; the vault had work when any attempt was.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Protocol, TypeVar

from vault_bmad.metrics.records import Attempt

MISS = "miss"  # an attempt's `cache` when no level served it

DEFINITIONS: dict[str, str] = {
    "throughput": "tasks that ended done, per minute of the time the vault had work "
    "(some task queued or running)",
    "latency": "from queued to ended: queue wait plus run; percentiles by nearest rank, "
    "read from a histogram to within 3%",
    "queue_wait": "from queued to started; its share is the part of all latency spent queued",
    "error_rate": "attempts that did not end done, over all attempts",
    "hit_rate": "attempts a cache level served, over all attempts; for a level, its hits "
    "over the lookups that reached it",
    "utilization": "run time over capacity × the time the agent had work (a task of its "
    "queued or running)",
    "critical_path": "the longest chain of dependent tasks of one run, each task counted "
    "once with its latest attempt's run time",
}


@dataclass(frozen=True)
class Overall:
    since: float
    until: float
    attempts: int
    done: int
    failed: int  # every attempt that did not end done: failed, timeout
    error_rate: float | None
    work_s: float  # time the vault had work in the period
    throughput_per_min: float | None
    latency_s: dict[str, float]  # "p50", "p90", "p95", "p99"
    latency_mean_s: float | None
    mean_wait_s: float | None
    wait_share: float | None
    hit_rate: float | None
    busy_s: float  # run time, all agents
    utilization: float | None  # all agents' run time over their capacity × their work time


@dataclass(frozen=True)
class AgentFigures:
    agent: str
    capacity: int
    attempts: int
    done: int
    failed: int
    error_rate: float | None
    busy_s: float  # run time inside the period
    work_s: float  # time the agent had work inside the period
    utilization: float | None
    latency_mean_s: float | None
    mean_wait_s: float | None
    wait_share: float | None
    latency_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LevelFigures:
    level: str
    hits: int
    misses: int  # lookups that reached this level and missed it
    hit_rate: float | None
    source: str  # "samples": the level's counters; "attempts": which level served each
    evictions: int = 0
    size: int | None = None  # entries at the last sample; None when only attempts tell
    ghost_hits: int = 0  # misses on keys the level had dropped to make room


@dataclass(frozen=True)
class TaskFigures:
    task_id: str
    agent: str  # of its latest attempt in the period
    status: str  # of its latest attempt
    attempts: int
    started: float  # its first attempt's start
    ended: float  # its latest attempt's end
    run_s: float  # its attempts' run time, summed
    last_started: float  # its latest attempt's start

    @property
    def span_s(self) -> float:
        return self.ended - self.started

    @property
    def last_run_s(self) -> float:
        """The latest attempt's run time: what the task counts on a critical path."""
        return max(0.0, self.ended - self.last_started)


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def throughput_per_min(done: int, work_s: float) -> float | None:
    return ratio(done * 60.0, work_s)


def utilization(busy_s: float, capacity: int, work_s: float) -> float | None:
    return ratio(busy_s, max(1, capacity) * work_s)


def percentile(values: Iterable[float], percent: int) -> float | None:
    """Nearest rank: the smallest value with at least `percent`% of values at or below it."""
    ordered = sorted(values)
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


def total_growth(counts: Iterable[int], baseline: int = 0) -> int:
    """How much a cumulative counter grew over its samples, in order, from `baseline`:
    the sample before the period, or zero when none came before (the counter started in
    the period, so its first sample's counts are growth too)."""
    return sum(counter_growth(a, b) for a, b in itertools.pairwise([baseline, *counts]))


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


@dataclass(slots=True)
class _TaskTally:
    """A task's attempts so far, while `task_figures` reads them."""

    first_start: float
    last: Attempt
    tries: int
    run_s: float


def task_figures(attempts: Sequence[Attempt]) -> tuple[TaskFigures, ...]:
    """One row per task, in order of its first start."""
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
            task_id,
            t.last.agent,
            t.last.status,
            t.tries,
            t.first_start,
            t.last.ended_at,
            t.run_s,
            min(t.last.started_at, t.last.ended_at),
        )
        for task_id, t in tallies.items()
    ]
    figures.sort(key=attrgetter("started", "task_id"))
    return tuple(figures)


def critical_path(
    tasks: Sequence[TaskFigures],
    dependencies: Mapping[str, Sequence[str]],
    *,
    linked_only: bool = False,
) -> tuple[tuple[str, ...], float]:
    """The longest chain of dependent tasks of one run, dependencies first, and its length:
    each task counted once, with its latest attempt's run time (`DEFINITIONS`). With
    `linked_only`, the longest of two tasks or more, however long a lone task is.

    A dependency links a task only when its latest attempt ended before the task's latest
    attempt started: they ran in the same run. A task run again later starts afresh, and
    idle time between runs never counts. Tasks taken in order of their latest start, one
    pass finds it, and no loop can arise. Of equal chains, the first found.
    """
    if not dependencies:
        return (), 0.0
    ordered = sorted(tasks, key=attrgetter("last_started", "task_id"))
    by_id = {task.task_id: task for task in ordered}
    length: dict[str, float] = {}  # of the longest chain ending with the task
    before: dict[str, str | None] = {}
    for task in ordered:
        links = [
            dep
            for dep in dependencies.get(task.task_id, ())
            if dep in length and by_id[dep].ended <= task.last_started
        ]
        previous = max(links, key=length.__getitem__) if links else None
        before[task.task_id] = previous
        chained = length[previous] if previous is not None else 0.0
        length[task.task_id] = chained + task.last_run_s
    ends = [task for task in length if before[task] is not None] if linked_only else length
    if not ends:
        return (), 0.0
    path = [max(ends, key=length.__getitem__)]
    while (previous := before[path[-1]]) is not None:
        path.append(previous)
    return tuple(reversed(path)), length[path[0]]
