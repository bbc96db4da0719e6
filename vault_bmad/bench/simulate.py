"""A discrete-event simulator of N workers running a DAG of tasks with known durations.

It measures scheduling rules without threads or clocks: the makespan under FIFO list
scheduling, under critical-path-first, or under any `Dispatcher` (such as the real Scheduler
driven on simulated time), against the lower bound max(critical path, total work / workers).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from vault_bmad.engine.graph import TaskGraph

Policy = Literal["fifo", "critical_path"]
ReadyKey = Callable[[str, float], tuple[float, ...]]  # (task, ready time) -> lower runs first


class Dispatcher(Protocol):
    """Decides what starts; the simulator tells it the time and what finished."""

    def start(self, free: int, now: float) -> Sequence[str]:
        """Tasks to start now, at most `free` of them."""
        ...

    def finish(self, task_id: str, now: float) -> None: ...


@dataclass(frozen=True)
class SimulationResult:
    makespan: float
    workers: int
    starts: Mapping[str, float]
    finishes: Mapping[str, float]
    work: float  # total seconds of the tasks that ran

    @property
    def utilization(self) -> float:
        return self.work / (self.makespan * self.workers) if self.makespan else 0.0

    @property
    def start_order(self) -> tuple[str, ...]:
        return tuple(sorted(self.starts, key=lambda t: (self.starts[t], t)))


class ListScheduling:
    """List scheduling: whenever a worker is free, start the ready task with the lowest key."""

    def __init__(self, dependencies: Mapping[str, Iterable[str]], key: ReadyKey) -> None:
        self._graph = TaskGraph(dependencies)
        self._key = key
        self._ready: list[tuple[tuple[float, ...], str]] = []
        for task_id in self._graph.ready():
            heapq.heappush(self._ready, (key(task_id, 0.0), task_id))

    def start(self, free: int, now: float) -> Sequence[str]:
        count = min(free, len(self._ready))
        return [heapq.heappop(self._ready)[1] for _ in range(count)]

    def finish(self, task_id: str, now: float) -> None:
        for child in self._graph.mark_done(task_id):
            heapq.heappush(self._ready, (self._key(child, now), child))


def list_scheduling(
    dependencies: Mapping[str, Iterable[str]], durations: Mapping[str, float], policy: Policy
) -> ListScheduling:
    """FIFO (first ready, first served) or critical-path-first (highest upward rank)."""
    position = {task_id: i for i, task_id in enumerate(TaskGraph(dependencies).nodes)}
    if policy == "fifo":
        return ListScheduling(dependencies, lambda t, ready_at: (ready_at, position[t]))
    ranks = TaskGraph(dependencies).upward_ranks(durations.__getitem__)
    return ListScheduling(dependencies, lambda t, ready_at: (-ranks[t], ready_at, position[t]))


def simulate(
    dispatcher: Dispatcher, durations: Mapping[str, float], workers: int
) -> SimulationResult:
    """Run until nothing is running and the dispatcher starts nothing more."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    now, free = 0.0, workers
    running: list[tuple[float, int, str]] = []
    starts: dict[str, float] = {}
    finishes: dict[str, float] = {}
    sequence = 0
    while True:
        for task_id in dispatcher.start(free, now):
            if free == 0 or task_id in starts:
                raise ValueError(f"dispatcher started {task_id!r} twice or past capacity")
            starts[task_id] = now
            heapq.heappush(running, (now + durations[task_id], sequence, task_id))
            sequence += 1
            free -= 1
        if not running:
            break
        now = running[0][0]
        while running and running[0][0] == now:
            _, _, task_id = heapq.heappop(running)
            finishes[task_id] = now
            free += 1
            dispatcher.finish(task_id, now)
    work = sum(durations[t] for t in finishes)
    return SimulationResult(now, workers, starts, finishes, work)


def simulate_dag(
    dependencies: Mapping[str, Iterable[str]],
    durations: Mapping[str, float],
    workers: int,
    policy: Policy = "critical_path",
) -> SimulationResult:
    return simulate(list_scheduling(dependencies, durations, policy), durations, workers)


def lower_bound(
    dependencies: Mapping[str, Iterable[str]], durations: Mapping[str, float], workers: int
) -> float:
    """No schedule beats the critical path, nor the total work spread over every worker."""
    critical = TaskGraph(dependencies).critical_path(durations.__getitem__).length
    return max(critical, sum(durations[t] for t in dependencies) / workers)
