"""The timeline's bars: one per attempt, in lanes per agent, with the critical path. Pure.

An agent with capacity for several tasks runs them side by side, so each agent gets as
many lanes as it ran attempts at once ("architect", "architect · 2", ...). A bar covers
an attempt's run; its queue wait before it is kept for a thinner bar. A task tried more
than once has a bar per try, and every try but the last is marked `retried`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vault_bmad.metrics.figures import critical_path, task_figures
from vault_bmad.metrics.records import WORKFLOW_RUNTIME, Attempt


@dataclass(frozen=True)
class RunningTask:
    """A task running now, as the store last saw it."""

    task_id: str
    agent: str
    attempt: int
    started_at: float


@dataclass(frozen=True)
class Bar:
    task_id: str
    agent: str
    lane: str
    attempt: int
    status: str  # done | failed | timeout | running ...
    queued_at: float
    started_at: float
    ended_at: float
    cache: str
    error: str | None
    retried: bool  # a later try of the same task follows
    critical: bool  # on the critical path


@dataclass(frozen=True)
class Timeline:
    bars: tuple[Bar, ...]
    lanes: tuple[str, ...]  # by agent, then lane number
    critical_path: tuple[str, ...]  # task ids, dependencies first
    critical_s: float
    shown: int  # attempts drawn
    total: int  # attempts in the period


def build_timeline(
    attempts: Sequence[Attempt],
    running: Sequence[RunningTask],
    dependencies: Mapping[str, Sequence[str]],
    *,
    now: float,
    total: int | None = None,
) -> Timeline:
    """Bars for `attempts` (agent work only) and for the tasks `running` now, up to `now`."""
    work = [a for a in attempts if a.runtime != WORKFLOW_RUNTIME]
    # a task alone is no chain worth marking, even when it outlasts every chain
    path, path_s = critical_path(task_figures(work), dependencies, linked_only=True)
    on_path = set(path)
    last_try: dict[str, int] = {}
    for attempt in work:
        last_try[attempt.task_id] = max(last_try.get(attempt.task_id, 0), attempt.attempt)
    for task in running:
        last_try[task.task_id] = max(last_try.get(task.task_id, 0), task.attempt)
    spans = [
        (a.task_id, a.agent, a.attempt, a.status, a.queued_at, a.started_at, a.ended_at, a.cache)
        for a in work
    ]
    errors = {(a.task_id, a.attempt, a.started_at): a.error for a in work}
    spans += [
        (t.task_id, t.agent, t.attempt, "running", t.started_at, t.started_at, now, "miss")
        for t in running
    ]
    lanes = _lanes([(agent, start, end) for _, agent, _, _, _, start, end, _ in spans])
    bars = tuple(
        Bar(
            task_id=task_id,
            agent=agent,
            lane=lane,
            attempt=attempt,
            status=status,
            queued_at=queued,
            started_at=started,
            ended_at=max(ended, started),
            cache=cache,
            error=errors.get((task_id, attempt, started)),
            retried=attempt < last_try.get(task_id, attempt),
            critical=task_id in on_path,
        )
        for (task_id, agent, attempt, status, queued, started, ended, cache), lane in zip(
            spans, lanes, strict=True
        )
    )
    names = sorted(set(lanes), key=_lane_order)
    count = len(work) + len(running)
    return Timeline(bars, tuple(names), path, path_s, count, max(count, total or 0))


def _lanes(spans: Sequence[tuple[str, float, float]]) -> list[str]:
    """A lane name for each (agent, start, end): the first of the agent's lanes free by then."""
    names = [""] * len(spans)
    by_agent: dict[str, list[int]] = defaultdict(list)
    for number, (agent, _, _) in enumerate(spans):
        by_agent[agent].append(number)
    for agent, numbers in by_agent.items():
        numbers.sort(key=lambda n: (spans[n][1], spans[n][2]))
        busy: list[tuple[float, int]] = []  # (end, lane) of each lane's last bar
        free: list[int] = []  # lanes free now, lowest first
        lanes_used = 0
        for number in numbers:
            _, start, end = spans[number]
            while busy and busy[0][0] <= start:
                heapq.heappush(free, heapq.heappop(busy)[1])
            if free:
                lane = heapq.heappop(free)
            else:
                lanes_used += 1
                lane = lanes_used
            heapq.heappush(busy, (end, lane))
            names[number] = agent if lane == 1 else f"{agent} · {lane}"
    return names


def _lane_order(name: str) -> tuple[str, int]:
    agent, _, lane = name.partition(" · ")
    return agent.casefold(), int(lane) if lane.isdigit() else 1
