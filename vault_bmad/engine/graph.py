"""The dependency DAG of tasks: readiness, blocked propagation, upward rank and critical path.

A task is ready when every dependency is done or skipped. When a task fails, every task
downstream of it becomes blocked, with a reason naming the failed task. A task waiting for
its user's answers (needs-input) has not ended: what depends on it waits, and is not
pending work either, since nothing but the answers can move it. The graph grows in
batches (the vault changes while the service runs); a batch may only point at itself and at
earlier tasks, so the whole graph stays acyclic and the order tasks were added in stays a
topological order.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from vault_bmad.errors import DependencyCycle
from vault_bmad.model.status import (
    BLOCKS_DEPENDANTS,
    ENDED_WELL,
    NEEDS_INPUT,
    OUTCOMES,
    NeedsInput,
    Outcome,
    Waiting,
)

NodeState = Literal[Waiting, "ready", NeedsInput, Outcome]  # ready: every dependency ended well


@dataclass(frozen=True)
class Blocked:
    """A task that can never run because something upstream failed."""

    task_id: str
    failed_task: str  # the root cause: the task that failed (or a dependency that is missing)
    via: str | None  # the blocked dependency it inherited this from; None when direct
    reason: str


@dataclass(frozen=True)
class GraphChange:
    """What a change did: tasks that are ready at once, tasks that are blocked, and tasks
    no longer blocked (they wait again for what had failed, now running again)."""

    ready: tuple[str, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    released: tuple[str, ...] = ()


@dataclass(frozen=True)
class CriticalPath:
    tasks: tuple[str, ...]
    length: float  # seconds: the sum of the tasks' durations


class TaskGraph:
    """Tasks and their dependencies, and where each task stands."""

    def __init__(
        self,
        dependencies: Mapping[str, Iterable[str]] | None = None,
        *,
        done: Iterable[str] = (),
        failed: Iterable[str] = (),
        skipped: Iterable[str] = (),
    ) -> None:
        self._deps: dict[str, tuple[str, ...]] = {}
        self._dependents: dict[str, list[str]] = {}
        self._waiting_on: dict[str, int] = {}
        self._state: dict[str, NodeState] = {}
        self._blocked: dict[str, Blocked] = {}
        self._external_done: set[str] = set()
        self._external_failed: set[str] = set()
        self._order: list[str] = []
        self._unfinished = 0  # tasks whose state is not an outcome
        self._asking = 0  # tasks waiting for answers
        if dependencies is not None:
            self.add(dependencies, done=done, failed=failed, skipped=skipped)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._state

    def __len__(self) -> int:
        return len(self._state)

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every task, in a topological order (dependencies first)."""
        return tuple(self._order)

    def add(
        self,
        dependencies: Mapping[str, Iterable[str]],
        *,
        done: Iterable[str] = (),
        failed: Iterable[str] = (),
        skipped: Iterable[str] = (),
        asking: Iterable[str] = (),
    ) -> GraphChange:
        """Add a batch of tasks. `done`/`failed` name tasks, here or outside, already finished;
        `skipped` names tasks of the batch that end without running, as if done; `asking`
        those of the batch that wait for their user's answers.

        A dependency that is neither in the graph nor named done blocks its dependent.
        Raises DependencyCycle, changing nothing, when the batch depends on itself in a loop.
        """
        batch = {task_id: tuple(dict.fromkeys(deps)) for task_id, deps in dependencies.items()}
        if clash := [task_id for task_id in batch if task_id in self._state]:
            raise ValueError(f"tasks already in the graph: {', '.join(sorted(clash))}")
        sorter = graphlib.TopologicalSorter(
            {t: [d for d in deps if d in batch] for t, deps in batch.items()}
        )
        try:
            order = list(sorter.static_order())
        except graphlib.CycleError as cycle:
            raise DependencyCycle(tuple(reversed(cycle.args[1]))) from None
        done, failed, skipped, asking = set(done), set(failed), set(skipped), set(asking)
        self._external_done |= {t for t in done if t not in batch}
        self._external_failed |= {t for t in failed if t not in batch}
        ready: list[str] = []
        blocked: list[Blocked] = []
        for task_id in order:
            if task_id in skipped:
                ended: NodeState | None = "skipped"
            else:
                ended = "done" if task_id in done else "failed" if task_id in failed else None
            blocked.extend(self._insert(task_id, batch[task_id], ended))
            if task_id in asking and self._state[task_id] == "ready":
                self._set(task_id, NEEDS_INPUT)
            if self._state[task_id] == "ready":
                ready.append(task_id)
        return GraphChange(tuple(ready), tuple(blocked))

    def _insert(
        self, task_id: str, deps: tuple[str, ...], ended: NodeState | None
    ) -> list[Blocked]:
        known = tuple(d for d in deps if d in self._state)
        self._deps[task_id] = known
        self._dependents[task_id] = []
        self._order.append(task_id)
        for dep in known:
            self._dependents[dep].append(task_id)
        self._waiting_on[task_id] = sum(1 for d in known if self._state[d] not in ENDED_WELL)
        if ended is not None:
            self._set(task_id, ended)
            return []
        self._set(task_id, "waiting")
        for dep in deps:
            if dep in self._state and self._state[dep] in BLOCKS_DEPENDANTS:
                return [self._mark_blocked(task_id, dep)]
            if dep not in self._state and dep in self._external_failed:
                return [self._mark_blocked(task_id, dep)]
            if dep not in self._state and dep not in self._external_done:
                reason = f"depends on {dep!r}, which is not a known task"
                return [self._set_blocked(Blocked(task_id, dep, None, reason))]
        if self._waiting_on[task_id] == 0:
            self._set(task_id, "ready")
        return []

    def reopen(self, task_id: str, deps: Iterable[str], *, skipped: bool = False) -> GraphChange:
        """Run a finished task (or one waiting for answers) again, as its note was set back to
        todo, with these dependencies.

        Dependents waiting on it wait again if it had been done; the tasks its failure had
        blocked wait for it again (`released`), unless something else still blocks them.
        `skipped` (a step its run now leaves out) ends it at once, skipped, as `add` does.
        """
        was = self._state[task_id]
        if was not in (*OUTCOMES, NEEDS_INPUT):
            raise ValueError(f"task {task_id!r} is {was}, not finished")
        for old in self._deps[task_id]:
            self._dependents[old].remove(task_id)
        known = tuple(d for d in dict.fromkeys(deps) if d in self._state)
        self._deps[task_id] = known
        for dep in known:
            self._dependents[dep].append(task_id)
        self._blocked.pop(task_id, None)
        if was in ENDED_WELL:
            for child in self._dependents[task_id]:
                if self._state[child] in ("waiting", "ready"):
                    self._waiting_on[child] += 1
                    self._set(child, "waiting")
        self._waiting_on[task_id] = sum(1 for d in known if self._state[d] not in ENDED_WELL)
        self._set(task_id, "waiting")
        released = self._release_blocked_by(task_id) if was == "failed" else ()
        if skipped:
            return GraphChange(ready=self.mark_done(task_id, skipped=True), released=released)
        for dep in deps:
            if dep in self._state and self._state[dep] in BLOCKS_DEPENDANTS:
                return GraphChange(blocked=(self._mark_blocked(task_id, dep),), released=released)
            if dep not in self._state and dep not in self._external_done:
                reason = f"depends on {dep!r}, which is not a known task"
                record = self._set_blocked(Blocked(task_id, dep, None, reason))
                return GraphChange(blocked=(record,), released=released)
        if self._waiting_on[task_id] == 0:
            self._set(task_id, "ready")
            return GraphChange(ready=(task_id,), released=released)
        return GraphChange(released=released)

    def _release_blocked_by(self, root: str) -> tuple[str, ...]:
        """Unblock what `root`'s failure blocked, upstream first; each waits again unless
        another dependency still blocks it."""
        released = []
        for task_id in self._order:
            record = self._blocked.get(task_id)
            if record is None or record.failed_task != root:
                continue
            del self._blocked[task_id]
            deps = self._deps[task_id]
            self._waiting_on[task_id] = sum(1 for d in deps if self._state[d] not in ENDED_WELL)
            self._set(task_id, "waiting")
            still = next((d for d in deps if self._state[d] in BLOCKS_DEPENDANTS), None)
            if still is not None:
                self._mark_blocked(task_id, still)
            else:
                released.append(task_id)
        return tuple(released)

    def state(self, task_id: str) -> NodeState:
        return self._state[task_id]

    def blocked(self, task_id: str) -> Blocked | None:
        """Why a task is blocked, or None when it is not."""
        return self._blocked.get(task_id)

    def dependencies(self, task_id: str) -> tuple[str, ...]:
        """Direct dependencies that are in the graph."""
        return self._deps[task_id]

    def dependents(self, task_id: str) -> tuple[str, ...]:
        """Tasks that depend directly on this one."""
        return tuple(self._dependents[task_id])

    def ready(self) -> tuple[str, ...]:
        """Tasks whose dependencies are all done and which are not finished themselves."""
        return tuple(t for t in self._order if self._state[t] == "ready")

    def pending(self) -> tuple[str, ...]:
        """Tasks not yet finished that may still move on their own, in topological order:
        not those waiting for answers, nor those whose every unfinished dependency does."""
        stalled: set[str] = set()
        found = []
        for task_id in self._order:
            state = self._state[task_id]
            if state in OUTCOMES:
                continue
            unfinished = [d for d in self._deps[task_id] if self._state[d] not in ENDED_WELL]
            if state == NEEDS_INPUT or (unfinished and stalled.issuperset(unfinished)):
                stalled.add(task_id)
            else:
                found.append(task_id)
        return tuple(found)

    def ask(self, task_id: str) -> None:
        """The task (ready or running) waits for its user's answers."""
        if self._state[task_id] != "ready":
            raise ValueError(f"task {task_id!r} is {self._state[task_id]}, not running")
        self._set(task_id, NEEDS_INPUT)

    def answered(self, task_id: str) -> None:
        """The task's user answered: it is ready again."""
        if self._state[task_id] != NEEDS_INPUT:
            raise ValueError(f"task {task_id!r} is {self._state[task_id]}, not waiting for input")
        self._set(task_id, "ready")

    def has_pending(self) -> bool:
        """Whether `pending` names any task; at once unless some task waits for answers."""
        if self._asking:
            return bool(self.pending())
        return self._unfinished > 0

    def mark_done(self, task_id: str, *, skipped: bool = False) -> tuple[str, ...]:
        """Record a success (or a skip, which counts as one); returns the tasks that became
        ready because of it."""
        if self._state[task_id] in OUTCOMES:
            raise ValueError(f"task {task_id!r} is already {self._state[task_id]}")
        self._set(task_id, "skipped" if skipped else "done")
        newly_ready = []
        for child in self._dependents[task_id]:
            self._waiting_on[child] -= 1
            if self._waiting_on[child] == 0 and self._state[child] == "waiting":
                self._set(child, "ready")
                newly_ready.append(child)
        return tuple(newly_ready)

    def mark_failed(self, task_id: str) -> tuple[Blocked, ...]:
        """Record a failure; returns every task downstream that it blocked."""
        if self._state[task_id] in OUTCOMES:
            raise ValueError(f"task {task_id!r} is already {self._state[task_id]}")
        self._set(task_id, "failed")
        return tuple(self._block_downstream(task_id))

    def _block_downstream(self, root: str) -> list[Blocked]:
        blocked: list[Blocked] = []
        frontier = [root]
        while frontier:
            parent = frontier.pop()
            for child in self._dependents[parent]:
                if self._state[child] not in OUTCOMES:
                    blocked.append(self._mark_blocked(child, parent))
                    frontier.append(child)
        return blocked

    def _mark_blocked(self, task_id: str, dep: str) -> Blocked:
        upstream = self._blocked.get(dep)
        if upstream is None:
            return self._set_blocked(Blocked(task_id, dep, None, f"dependency {dep!r} failed"))
        root = upstream.failed_task
        reason = f"dependency {dep!r} is blocked because {root!r} failed"
        return self._set_blocked(Blocked(task_id, root, dep, reason))

    def _set(self, task_id: str, state: NodeState) -> None:
        """Every change of a task's state goes through here, which counts the unfinished."""
        before = self._state.get(task_id)
        was_open = before is not None and before not in OUTCOMES
        self._unfinished += (state not in OUTCOMES) - was_open
        self._asking += (state == NEEDS_INPUT) - (before == NEEDS_INPUT)
        self._state[task_id] = state

    def _set_blocked(self, record: Blocked) -> Blocked:
        self._set(record.task_id, "blocked")
        self._blocked[record.task_id] = record
        return record

    def upward_ranks(self, duration: Callable[[str], float]) -> dict[str, float]:
        """For each pending task, its duration plus the longest rank among its dependents.

        The rank is the predicted time from the task's start to the end of the work that
        depends on it; serving the highest rank first puts the critical path first.
        """
        ranks: dict[str, float] = {}
        for task_id in reversed(self._order):
            if self._state[task_id] in OUTCOMES:
                continue
            below = (ranks.get(child, 0.0) for child in self._dependents[task_id])
            ranks[task_id] = duration(task_id) + max(below, default=0.0)
        return ranks

    def critical_path(self, duration: Callable[[str], float]) -> CriticalPath:
        """The longest chain of pending tasks, measured by duration."""
        ranks = self.upward_ranks(duration)
        if not ranks:
            return CriticalPath((), 0.0)
        pending = (t for t in self._order if t in ranks)
        current = max(pending, key=ranks.__getitem__)  # the first of equals, in topological order
        path = [current]
        while children := [c for c in self._dependents[current] if c in ranks]:
            current = max(children, key=lambda c: ranks[c])
            path.append(current)
        return CriticalPath(tuple(path), ranks[path[0]])
