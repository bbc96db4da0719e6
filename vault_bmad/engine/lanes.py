"""The scheduler's queue: ready tasks in lanes keyed by the set of agents that may take them.

Each lane is a `TaskQueue`; all share one clock and weights, so their heads compare
directly and the best head among lanes with a free agent is found without scanning the
queue. A task keeps its place in line (when it was first queued) when it moves between
lanes, waits out a retry or is held, until `forget` says it ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vault_bmad.engine.queue import QueuedTask, QueueKey, TaskQueue
from vault_bmad.model.definitions import TaskDef

Lane = frozenset[str]  # ids of the agents that may take the lane's tasks


class Lanes:
    """Queued task ids by lane; see the module docstring."""

    def __init__(
        self,
        *,
        aging_step: float | None = 60.0,
        rank_weight: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._aging_step = aging_step
        self._rank_weight = rank_weight
        self._clock = clock
        self._queues: dict[Lane, TaskQueue] = {}
        self._lane_of: dict[str, Lane] = {}
        self._names: dict[str, str] = {}  # queued task id -> the agent its note names
        self._naming: dict[str, set[str]] = {}  # agent id -> queued tasks that name it
        self._enqueued_at: dict[str, float] = {}

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._lane_of

    def __len__(self) -> int:
        return len(self._lane_of)

    def put(self, task: TaskDef, lane: Lane, *, dependents: int, rank: float) -> None:
        """Queue a task in `lane`, or move it there with its place in line."""
        self.take(task.id)
        queue = self._queues.get(lane)
        if queue is None:
            queue = self._queues[lane] = TaskQueue(
                aging_step=self._aging_step, rank_weight=self._rank_weight, clock=self._clock
            )
        item = queue.push(
            task.id,
            priority=task.priority,
            criticality=task.criticality,
            dependents=dependents,
            rank=rank,
            enqueued_at=self._enqueued_at.get(task.id),
        )
        self._enqueued_at[task.id] = item.enqueued_at
        self._lane_of[task.id] = lane
        if task.agent is not None:
            self._names[task.id] = task.agent
            self._naming.setdefault(task.agent, set()).add(task.id)

    def take(self, task_id: str) -> None:
        """Take a task out of its lane, if queued; it keeps its place in line for later."""
        lane = self._lane_of.pop(task_id, None)
        if lane is not None:
            queue = self._queues[lane]
            queue.remove(task_id)
            if not queue:
                del self._queues[lane]
        if (agent := self._names.pop(task_id, None)) is not None:
            self._naming[agent].discard(task_id)

    def forget(self, task_id: str) -> None:
        """The task ended: should it queue again, it starts at the back."""
        self._enqueued_at.pop(task_id, None)

    def lanes(self) -> dict[str, Lane]:
        """Every queued task's lane."""
        return dict(self._lane_of)

    def lane_of(self, task_id: str) -> Lane | None:
        """The agents that may take a queued task; None when it is not queued."""
        return self._lane_of.get(task_id)

    def get(self, task_id: str) -> QueuedTask | None:
        lane = self._lane_of.get(task_id)
        return self._queues[lane].get(task_id) if lane is not None else None

    def head(self, lane: Lane) -> QueuedTask | None:
        queue = self._queues.get(lane)
        return queue.peek() if queue is not None else None

    def naming(self, agent_id: str) -> list[str]:
        """The queued tasks whose note names this agent, by id."""
        return sorted(self._naming.get(agent_id, ()))

    def backlog(self, agent_id: str) -> int:
        """Tasks queued for this agent alone."""
        queue = self._queues.get(frozenset({agent_id}))
        return len(queue) if queue is not None else 0

    def best(self, free: set[str], skipped: set[Lane]) -> Lane | None:
        """The lane, among those some free agent may serve, whose head comes first."""
        best: tuple[QueueKey, Lane] | None = None
        for lane, queue in self._queues.items():
            if lane in skipped or lane.isdisjoint(free):
                continue
            key = queue.head_key()
            if key is not None and (best is None or key < best[0]):
                best = (key, lane)
        return best[1] if best else None

    def best_for(self, agent_id: str) -> str | None:
        """The best queued task this agent may take: one naming it, or one it qualifies for."""
        options = list(self._naming.get(agent_id, ()))
        for lane, queue in self._queues.items():
            head = queue.peek()
            if agent_id in lane and head is not None:
                options.append(head.task_id)
        return min(options, key=self._key, default=None)

    def ordered(self) -> list[QueuedTask]:
        """Every queued task in serving order (O(n log n): for the dashboard)."""
        keyed = [(self._key(t), self.get(t)) for t in self._lane_of]
        return [item for _, item in sorted(keyed, key=lambda pair: pair[0]) if item is not None]

    def _key(self, task_id: str) -> QueueKey:
        key = self._queues[self._lane_of[task_id]].key_of(task_id)
        assert key is not None
        return key
