"""The scheduler: ready tasks in priority order, matched to agents within every limit.

It ties the pure parts together for the orchestrator: the dependency graph says what is
ready, the queues say what comes first, the balancer picks an agent, health takes agents out
and probes them back, and the predictor ranks the critical path first. It does no I/O and
starts no threads; the orchestrator calls `submit`, `dispatch` and `finish` from one thread
(or under one lock) and runs the assignments it gets on its executor.

Queued tasks sit in lanes (`engine.lanes`) keyed by the set of agents that may take them: a
task that names an agent in service has the lane of that agent alone; any other task has the
lane of the agents that qualify for it. Serving the best head among lanes with a free agent
never scans the queue, and a task that cannot run yet never holds up one that can.

A task whose agent asks its user something (`ask`) gives its slot back and waits outside
the queue, holding nothing, until `answered` queues it again; what depends on it waits.

A task that needs no agent (the task that starts a workflow run, a guidance step) takes no
slot: once ready, `take_agentless` hands it to the orchestrator, which ends it itself and
says so with `end_agentless`. A skipped task ends at once, as if done.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable

from vault_bmad.engine.backoff import Backoffs
from vault_bmad.engine.balancer import Balancer, Candidate
from vault_bmad.engine.candidates import candidate, choices
from vault_bmad.engine.decisions import Assignment, SchedulerChange
from vault_bmad.engine.graph import Blocked, TaskGraph
from vault_bmad.engine.health import AgentState, HealthChange, HealthMonitor
from vault_bmad.engine.lanes import Lane, Lanes
from vault_bmad.engine.predictor import DurationPredictor
from vault_bmad.engine.queue import QueuedTask
from vault_bmad.engine.slots import Slots
from vault_bmad.model.definitions import AgentDef, TaskDef
from vault_bmad.model.status import BLOCKS_DEPENDANTS, NEEDS_INPUT, OUTCOMES, Phase


class Scheduler:
    """Decides what runs where; see the module docstring."""

    def __init__(
        self,
        agents: Iterable[AgentDef],
        *,
        max_concurrent_agents: int = 10,
        strategy: str = "adaptive",
        aging_step: float | None = 60.0,
        rank_weight: float = 1.0,
        min_match: float = 0.5,
        default_timeout: float = 30.0,
        default_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        health: HealthMonitor | None = None,
        predictor: DurationPredictor | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrent_agents < 1:
            raise ValueError("max_concurrent_agents must be at least 1")
        self.max_concurrent_agents = self._limit = max_concurrent_agents
        # For tasks whose note sets none:
        self.default_timeout, self.default_retries = default_timeout, default_retries
        self._rng, self._clock = rng or random.Random(), clock
        self.health = health or HealthMonitor(clock=clock)
        self.predictor = predictor or DurationPredictor()
        self._agents = {agent.id: agent for agent in agents}
        self.balancer = Balancer(
            self._agents.values(), strategy=strategy, min_match=min_match, rng=self._rng
        )
        self._graph = TaskGraph()
        self._tasks: dict[str, TaskDef] = {}
        self._ranks: dict[str, float] = {}
        self._lanes = Lanes(aging_step=aging_step, rank_weight=rank_weight, clock=clock)
        self._slots = Slots(self._agents.values())
        self._held: set[str] = set()  # dispatched, then put aside: see `hold`
        self._attempts: Counter[str] = Counter()
        self._spent_before: Counter[str] = Counter()  # attempts before the latest answers
        self._agentless: dict[str, bool] = {}  # ready tasks no agent runs -> taken (running)
        self._backing_off = Backoffs(backoff_base, backoff_max, self._rng, clock)
        self._retired: set[str] = set()  # agents given up on: out for good, never probed

    # The orchestrator's loop: submit, dispatch, finish.

    def submit(self, tasks: Iterable[TaskDef], *, done: Iterable[str] = ()) -> SchedulerChange:
        """Add new tasks (ids already submitted are skipped: see `update`); ready ones queue.

        Tasks whose status is done (or that `done` names, e.g. from an earlier run) count as
        done; failed, blocked and invalid ones block their dependents; needs-input ones wait
        for `answered`. Raises DependencyCycle.
        """
        batch = [task for task in tasks if task.id not in self._tasks]
        finished = {t.id for t in batch if t.status == "done"} | set(done)
        failed = {t.id for t in batch if t.status in BLOCKS_DEPENDANTS}
        skipped = {t.id for t in batch if t.status == "skipped"}
        asking = {t.id for t in batch if t.status == NEEDS_INPUT}
        change = self._graph.add(
            {t.id: t.depends_on for t in batch},
            done=finished,
            failed=failed,
            skipped=skipped,
            asking=asking,
        )
        self._tasks.update((t.id, t) for t in batch)
        self._rerank()
        for task_id in self._lanes.lanes():  # new dependents raise queued work
            item = self._lanes.get(task_id)
            dependents = len(self._graph.dependents(task_id))
            if item and (item.rank, item.dependents) != (self._ranks[task_id], dependents):
                self._enqueue(task_id)
        for task_id in change.ready:
            self._enqueue(task_id)
        ended = tuple(t.id for t in batch if t.id in skipped)
        return SchedulerChange(queued=change.ready, blocked=change.blocked, skipped=ended)

    def dispatch(self, limit: int | None = None) -> list[Assignment]:
        """Assignments to start now: probes first, then the best queued work that fits."""
        self._release_retries()
        slots = self._limit - len(self._slots.running)
        if limit is not None:
            slots = min(slots, limit)
        started: list[Assignment] = []
        out = self.health.out_of_service()
        for agent_id in out:
            if agent_id not in self._agents or agent_id in self._retired:
                continue
            if slots > 0 and self.health.probe_due(agent_id) and self._slots.has_room(agent_id):
                task_id = self._lanes.best_for(agent_id)
                if task_id is not None:
                    self._lanes.take(task_id)
                    self.health.begin_probe(agent_id)
                    started.append(self._start(task_id, agent_id, probe=True))
                    slots -= 1
        free = self._agents.keys() - self._slots.full - set(out)  # a probe leaves `out` as it was
        skipped: set[Lane] = set()
        while slots > 0 and free:
            lane = self._lanes.best(free, skipped)
            item = self._lanes.head(lane) if lane is not None else None
            if lane is None or item is None:
                break
            task = self._tasks[item.task_id]
            agents = choices(lane & free, self.balancer.strategy, self._rng)
            candidates = [self._candidate(a, task) for a in agents]
            chosen = self.balancer.choose(task, candidates)
            if chosen is None or chosen not in free:
                skipped.add(lane)  # cannot happen while lanes are current; never spin
                continue
            self._lanes.take(item.task_id)
            started.append(self._start(item.task_id, chosen, probe=False))
            slots -= 1
            if not self._slots.has_room(chosen):
                free.discard(chosen)
        return started

    def finish(
        self,
        task_id: str,
        *,
        ok: bool,
        seconds: float,
        retry: bool = True,
        measured: bool = True,
        wait_at_least: float | None = None,
        error: str | None = None,
    ) -> SchedulerChange:
        """Record how an attempt ended. `retry=False` when trying again cannot help;
        `measured=False` when the attempt says nothing about the agent (a cache served it,
        or it failed for the task's own reasons), so health and the predictor ignore it;
        `wait_at_least` is the least wait before a retry (a server's Retry-After)."""
        assignment = self._slots.end(task_id)
        task, agent_id = assignment.task, assignment.agent_id
        change = None
        if measured:
            change = self.health.record(
                agent_id,
                ok=ok,
                seconds=seconds,
                timeout=self.timeout(task),
                probe=assignment.probe,
                error=error,
            )
        elif assignment.probe and ok:  # a probe ends however it was served
            change = self.health.record(agent_id, ok=True, seconds=seconds, probe=True)
        elif assignment.probe:
            change = self.health.probe_inconclusive(agent_id)
        moved = self._apply_health(change)
        health = (change,) if change else ()
        if ok:
            if measured:
                self.predictor.observe(agent_id, task.kind, seconds, task.complexity)
            self._lanes.forget(task_id)
            ready = self._graph.mark_done(task_id)
            for child in ready:
                self._enqueue(child)
            return SchedulerChange(queued=ready, health=health, reassigned=moved)
        if retry and self._attempts[task_id] - self._spent_before[task_id] <= self.retries(task):
            at = self._backing_off.wait(task_id, self._attempts[task_id], wait_at_least)
            return SchedulerChange(retry=True, retry_at=at, health=health, reassigned=moved)
        self._lanes.forget(task_id)
        blocked = self._graph.mark_failed(task_id)
        return SchedulerChange(blocked=blocked, health=health, reassigned=moved)

    def release(self, task_id: str) -> None:
        """The task's attempt is over but the task is not finished yet (its output is being
        written): its agent's slot is free for other work. `finish` it once the output is
        written; until then it is still running."""
        self._slots.release(task_id)

    def ask(self, task_id: str, *, seconds: float) -> SchedulerChange:
        """The attempt ended with its agent asking the user: the task gives its slot back and
        waits for `answered`. The agent did answer, so its health counts it as a success."""
        assignment = self._slots.free(task_id)
        change = self.health.record(
            assignment.agent_id,
            ok=True,
            seconds=seconds,
            timeout=self.timeout(assignment.task),
            probe=assignment.probe,
        )
        self._lanes.forget(task_id)
        self._graph.ask(task_id)
        moved = self._apply_health(change)
        return SchedulerChange(health=(change,) if change else (), reassigned=moved)

    def answered(self, task: TaskDef) -> SchedulerChange:
        """The user answered a task waiting for input: it queues again, with a full set of
        retries."""
        self._tasks[task.id] = task
        self._graph.answered(task.id)
        self._spent_before[task.id] = self._attempts[task.id]
        self._enqueue(task.id)
        return SchedulerChange(queued=(task.id,))

    def take_agentless(self) -> list[TaskDef]:
        """The ready tasks that need no agent, each now running until `end_agentless`."""
        taken = [task_id for task_id, running in self._agentless.items() if not running]
        self._agentless.update(dict.fromkeys(taken, True))
        return [self._tasks[task_id] for task_id in taken]

    def end_agentless(self, task_id: str, *, ok: bool) -> SchedulerChange:
        """A task from `take_agentless` ended; its dependents may be ready."""
        del self._agentless[task_id]
        if not ok:
            return SchedulerChange(blocked=self._graph.mark_failed(task_id))
        ready = self._graph.mark_done(task_id)
        for child in ready:
            self._enqueue(child)
        return SchedulerChange(queued=ready)

    def hold(self, task_id: str) -> None:
        """Put a task just dispatched aside, as if it had not been: its slot is free and no
        attempt is spent. It waits outside the queue (an identical request is running) until
        `serve_held` gives it that request's answer, or `unhold` queues it again."""
        self._slots.free(task_id)
        self._attempts[task_id] -= 1
        self._held.add(task_id)

    def unhold(self, task_id: str) -> None:
        """Queue a held task again, in its old place."""
        if task_id in self._held:
            self._held.discard(task_id)
            self._enqueue(task_id)

    def serve_held(self, task_id: str, agent_id: str) -> Assignment | None:
        """Start a held task on `agent_id` to take its twin's answer (`release` it: it needs
        no slot); None if it no longer waits."""
        if task_id not in self._held:
            return None
        self._held.discard(task_id)
        return self._start(task_id, agent_id, probe=False)

    # Changes from outside: the vault, an operator, the auto-scaler.

    def cancel(self, task_id: str) -> SchedulerChange:
        """Drop a task that has not started (its note went away); its dependents are blocked."""
        if self._slots.runs(task_id):
            raise ValueError(f"task {task_id!r} is running; let it finish")
        if self._graph.state(task_id) in OUTCOMES:
            return SchedulerChange()
        self._unqueue(task_id)
        return SchedulerChange(blocked=self._graph.mark_failed(task_id))

    def reopen(self, task: TaskDef) -> SchedulerChange:
        """Run a finished task (or one waiting for input) again, as its note was set back to
        todo (skipped: see graph)."""
        if self.phase(task.id) not in (*OUTCOMES, NEEDS_INPUT):
            raise ValueError(f"task {task.id!r} has not finished")
        self._tasks[task.id] = task
        self._attempts[task.id] = 0
        self._spent_before[task.id] = 0
        change = self._graph.reopen(task.id, task.depends_on, skipped=task.status == "skipped")
        for child in self._graph.dependents(task.id):  # queued work that must wait again
            if child in self._lanes and self._graph.state(child) == "waiting":
                self._lanes.take(child)
        self._rerank()
        for task_id in change.ready:
            self._enqueue(task_id)
        return SchedulerChange(
            queued=change.ready, blocked=change.blocked, released=change.released
        )

    def give_up(self, agents: Iterable[str], reason: str) -> SchedulerChange:
        """Take `agents` out for good (their endpoint is gone) and fail every queued task no
        other agent may take, blocking its dependents. Call again as more work queues:
        it fails only what is newly stranded."""
        for agent_id in set(agents) - self._retired:
            self._retired.add(agent_id)
            self._apply_health(self.health.take_out(agent_id, reason))
        if not self._retired:
            return SchedulerChange()
        stranded = [t for t in self.queued_tasks() if not self._takers(self._tasks[t])]
        blocked: list[Blocked] = []
        for task_id in stranded:
            self._unqueue(task_id)
            blocked.extend(self._graph.mark_failed(task_id))
        return SchedulerChange(failed=tuple(stranded), blocked=tuple(blocked))

    def queued_tasks(self) -> tuple[str, ...]:
        """Every queued task: in line, waiting out a retry's backoff, or held."""
        return (*self._lanes.lanes(), *self._backing_off, *self._held)

    def knows(self, task_id: str) -> bool:
        return task_id in self._tasks

    def update(self, task: TaskDef) -> bool:
        """Take a changed note's priority, criticality or agent; True when it was queued.

        Dependencies are fixed once submitted; cancel and submit again to change them.
        """
        if task.id not in self._tasks:
            raise KeyError(task.id)
        self._tasks[task.id] = task
        if task.id not in self._lanes:
            return False
        self._enqueue(task.id)
        return True

    def take_out(self, agent_id: str, reason: str = "taken out by hand") -> SchedulerChange:
        change = self.health.take_out(agent_id, reason)
        return SchedulerChange(
            health=(change,) if change else (), reassigned=self._apply_health(change)
        )

    def set_agents(self, agents: Iterable[AgentDef]) -> SchedulerChange:
        """Use a new set of agents; queued work is matched again. Running work goes on."""
        agents = list(agents)
        for gone in set(self._agents) - {a.id for a in agents}:
            self.health.forget(gone)
        self._agents = {agent.id: agent for agent in agents}
        self._slots.set_agents(agents)
        self.balancer.set_agents(agents)
        before = self._lanes.lanes()
        for task_id in before:
            self._enqueue(task_id)
        after = self._lanes.lanes()
        return SchedulerChange(reassigned=tuple(t for t in before if after[t] != before[t]))

    def set_concurrency(self, workers: int) -> None:
        """Run at most this many tasks at once (the worker pool size), capped by the maximum."""
        self._limit = min(self.max_concurrent_agents, max(1, workers))

    # Questions.

    def timeout(self, task: TaskDef) -> float:
        """Seconds one attempt may take: the note's timeout or the default."""
        return self.default_timeout if task.timeout is None else task.timeout

    def retries(self, task: TaskDef) -> int:
        """Attempts after the first: the note's retries or the default."""
        return self.default_retries if task.retries is None else task.retries

    def phase(self, task_id: str) -> Phase:
        if self._slots.runs(task_id) or self._agentless.get(task_id):
            return "running"
        places = (self._agentless, self._lanes, self._backing_off, self._held)
        if any(task_id in place for place in places):
            return "queued"
        state = self._graph.state(task_id)
        return "waiting" if state == "ready" else state

    def blocked(self, task_id: str) -> Blocked | None:
        return self._graph.blocked(task_id)

    def queue_place(self, task_id: str) -> tuple[float | None, bool, Lane | None]:
        """A queued task's backoff end (this clock), whether it is `hold`-ing, its lane."""
        return self._backing_off.until(task_id), task_id in self._held, self._lanes.lane_of(task_id)

    @property
    def concurrency(self) -> int:
        return self._limit

    @property
    def running(self) -> tuple[Assignment, ...]:
        return tuple(self._slots.running.values())

    @property
    def queued_count(self) -> int:
        """Tasks queued, counting failed attempts waiting out their backoff and held ones."""
        return len(self._lanes) + len(self._backing_off) + len(self._held)

    def in_flight(self, agent_id: str) -> int:
        return self._slots.in_flight(agent_id)

    def queued(self) -> list[QueuedTask]:
        """Every queued task in serving order (O(n log n): for the dashboard)."""
        return self._lanes.ordered()

    def pending(self) -> bool:
        """True while some task is running, queued or waiting on one that is."""
        return bool(self._slots.running) or self._graph.has_pending()

    def next_wakeup(self) -> float | None:
        """When a retry's backoff ends or a probe falls due: dispatch then, finish or not."""
        now = self._clock()
        ends = self._backing_off.next_end()
        times = [ends] if ends is not None else []
        if self._lanes or self._backing_off:
            probes = (self.health.probe_at(a) for a in self.health.out_of_service())
            times.extend(t for t in probes if t is not None and t > now)
        return min(times, default=None)

    def candidates(self) -> list[Candidate]:
        """Every agent as the balancer sees it now (for reports and the dashboard)."""
        return [self._candidate(a) for a in sorted(self._agents)]

    # Inside.

    def _candidate(self, agent_id: str, task: TaskDef | None = None) -> Candidate:
        return candidate(
            self._agents[agent_id],
            task,
            strategy=self.balancer.strategy,
            in_flight=self._slots.in_flight(agent_id),
            backlog=self._lanes.backlog(agent_id),
            health=self.health,
            predictor=self.predictor,
        )

    def _unqueue(self, task_id: str) -> None:
        """Take a task out of wherever it waits to start."""
        self._lanes.take(task_id)
        self._lanes.forget(task_id)
        self._backing_off.drop(task_id)
        self._held.discard(task_id)
        self._agentless.pop(task_id, None)

    def _release_retries(self) -> None:
        for task_id in self._backing_off.due():
            self._enqueue(task_id)

    def _takers(self, task: TaskDef) -> set[str]:
        """Agents not given up on that may take the task, now or once back in service."""
        takers = set(self._lane_for(task))
        if task.agent in self._agents:
            takers.add(task.agent)
        return takers - self._retired

    def _lane_for(self, task: TaskDef) -> Lane:
        if task.agent in self._agents and self.health.in_service(task.agent):
            return frozenset({task.agent})
        return self.balancer.qualifying(task).intersection(self._agents)

    def _enqueue(self, task_id: str) -> None:
        task = self._tasks[task_id]
        if not task.needs_agent:
            self._agentless.setdefault(task_id, False)
            return
        dependents = len(self._graph.dependents(task_id))
        rank = self._ranks.get(task_id, 0.0)
        self._lanes.put(task, self._lane_for(task), dependents=dependents, rank=rank)

    def _rerank(self) -> None:
        self._ranks = self._graph.upward_ranks(
            lambda t: (
                self.predictor.predict_task(self._tasks[t]) if self._tasks[t].needs_agent else 0.0
            )
        )

    def _start(self, task_id: str, agent_id: str, *, probe: bool) -> Assignment:
        task = self._tasks[task_id]
        self._attempts[task_id] += 1
        predicted = self.predictor.predict_task(task, agent_id)
        attempt = self._attempts[task_id]
        assignment = Assignment(task, agent_id, attempt, probe, predicted, self.timeout(task))
        self._slots.take(assignment)
        return assignment

    def _apply_health(self, change: HealthChange | None) -> tuple[str, ...]:
        """Move queued work when an agent leaves service or comes back."""
        if change is None or (AgentState.IN_SERVICE not in (change.before, change.after)):
            return ()
        affected = self._lanes.naming(change.agent_id)
        for task_id in affected:
            self._enqueue(task_id)
        return tuple(affected)
