"""A frozen picture of the engine at one moment, for the API, /metrics and the dashboard.

The engine thread takes a snapshot after it changes something; web threads only ever
read the latest one, so they never touch the scheduler while it moves. Each task waiting,
queued or waiting for its user's answers says what it waits for (`waiting_for`), in the
words of `wait_reason`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from vault_bmad.engine.endpoints import EndpointView
from vault_bmad.engine.orchestrator import Orchestrator
from vault_bmad.errors import Problem
from vault_bmad.model.definitions import TaskDef
from vault_bmad.model.status import NEEDS_INPUT, Phase, TaskStatus


@dataclass(frozen=True)
class TaskView:
    id: str
    path: str
    title: str
    status: Phase | TaskStatus  # its phase in the run, else its note's status
    priority: str
    agent: str | None  # the agent it runs or ran on, else the one its note names
    attempts: int
    error: str | None
    output: str | None
    workflow: str | None
    step: str | None
    depends_on: tuple[str, ...]
    seconds: float | None = None  # its latest attempt's time, so far while it runs
    waiting_for: str | None = None  # while waiting or queued: what it waits for
    waiting_until: float | None = None  # when that wait ends, if known (epoch seconds)
    truncated: bool = False  # its answer was cut off at its length limit
    questions: tuple[str, ...] = ()  # needs-input: what its agent asks
    asked_at: float | None = None  # needs-input: since when (Unix seconds)
    guidance: bool = False  # a workflow step no agent runs: its notes are for people


@dataclass(frozen=True)
class AgentView:
    id: str
    name: str
    title: str
    path: str
    runtime: str
    expertise: tuple[str, ...]
    capacity: int
    weight: float
    in_flight: int
    state: str  # in_service | out | probing
    health: float
    latency_s: float | None  # EWMA seconds per attempt
    error_rate: float
    consecutive_failures: int
    running: tuple[str, ...]  # task ids it runs now
    why: str | None  # while out: why
    until: float | None  # while out: when it may take work again (wall clock)


@dataclass(frozen=True)
class EngineSnapshot:
    at: float
    tasks: tuple[TaskView, ...] = ()
    agents: tuple[AgentView, ...] = ()
    problems: tuple[Problem, ...] = ()
    queued: int = 0
    running: int = 0
    pool_size: int = 0
    endpoints: tuple[EndpointView, ...] = ()

    def agents_out(self) -> list[dict[str, object]]:
        """The agents that take no work now: which, why, and until when."""
        return [
            {"id": a.id, "state": a.state, "why": a.why, "until": a.until}
            for a in self.agents
            if a.state != "in_service"
        ]

    def waiting(self) -> list[TaskView]:
        """The tasks waiting for their user's answers, the longest waiting first."""
        found = [task for task in self.tasks if task.asked_at is not None]
        return sorted(found, key=lambda task: (task.asked_at, task.id))

    def counts(self) -> dict[str, int]:
        """Tasks by status."""
        counts: dict[str, int] = {}
        for task in self.tasks:
            counts[task.status] = counts.get(task.status, 0) + 1
        return counts

    def task(self, task_id: str) -> TaskView | None:
        return next((task for task in self.tasks if task.id == task_id), None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def take_snapshot(orchestrator: Orchestrator, at: float) -> EngineSnapshot:
    scheduler = orchestrator.scheduler
    definitions = orchestrator.definitions
    running = {a.task.id: a for a in scheduler.running}
    since = orchestrator.running_since()
    outcomes = orchestrator.summary.outcomes
    phases = {
        task_id: scheduler.phase(task_id) if scheduler.knows(task_id) else task.status
        for task_id, task in definitions.tasks.items()
    }
    conversations = orchestrator.journal.conversations
    tasks = []
    for task in definitions.tasks.values():
        asked = conversations.open(task.id)
        phase = phases[task.id]
        outcome = outcomes.get(task.id)
        assignment = running.get(task.id)
        blocked = scheduler.blocked(task.id) if scheduler.knows(task.id) else None
        reason, until = wait_reason(orchestrator, task, phases)
        seconds = at - since[task.id] if task.id in since else None
        tasks.append(
            TaskView(
                id=task.id,
                path=task.path,
                title=task.title,
                status=phase,
                priority=task.priority.name.lower(),
                agent=(
                    assignment.agent_id
                    if assignment
                    else (outcome.agent if outcome and outcome.agent else task.agent)
                ),
                attempts=assignment.attempt if assignment else (outcome.attempts if outcome else 0),
                error=(outcome.error if outcome else None) or (blocked.reason if blocked else None),
                output=orchestrator.output_of(task.id),
                workflow=task.workflow,
                step=task.step,
                depends_on=task.depends_on,
                seconds=seconds if seconds is not None else (outcome.seconds if outcome else None),
                waiting_for=reason,
                waiting_until=until,
                truncated=task.id in orchestrator.journal.truncated,
                questions=asked.ask.questions if asked else (),
                asked_at=asked.asked_at if asked else None,
                guidance=task.guidance,
            )
        )
    agents = []
    for agent in definitions.agents.values():
        health = scheduler.health.snapshot(agent.id)
        agents.append(
            AgentView(
                id=agent.id,
                name=agent.name,
                title=agent.title,
                path=agent.path,
                runtime=agent.runtime,
                expertise=agent.expertise,
                capacity=agent.capacity,
                weight=agent.weight,
                in_flight=scheduler.in_flight(agent.id),
                state=str(health.state),
                health=round(health.score, 4),
                latency_s=health.latency,
                error_rate=round(health.error_rate, 4),
                consecutive_failures=health.consecutive_failures,
                running=tuple(t for t, a in running.items() if a.agent_id == agent.id),
                why=health.why,
                until=scheduler.health.back_at(agent.id, at),
            )
        )
    return EngineSnapshot(
        at=at,
        tasks=tuple(sorted(tasks, key=lambda t: t.id)),
        agents=tuple(sorted(agents, key=lambda a: a.id)),
        problems=definitions.problems,
        queued=scheduler.queued_count,
        running=len(running),
        pool_size=scheduler.concurrency,
        endpoints=orchestrator.endpoints.views(),
    )


def wait_reason(
    orchestrator: Orchestrator, task: TaskDef, phases: dict[str, Phase | TaskStatus]
) -> tuple[str | None, float | None]:
    """What a waiting or queued task waits for, and until when if that is known: its
    dependencies, a retry's backoff, an identical request's result, its agents being out
    (until their probe), their capacity, or the pool's workers."""
    task_id = task.id
    phase = phases.get(task_id)
    scheduler = orchestrator.scheduler
    if phase == "waiting":
        pending = [dep for dep in task.depends_on if phases.get(dep) != "done"]
        return f"dependency: waits for {_names(pending)}", None
    if phase == NEEDS_INPUT:
        return "your answers, in its note", None
    if phase != "queued":
        return None, None
    retry, held, agents = scheduler.queue_place(task_id)
    if retry is not None:
        until = orchestrator.wall_time(retry)
        return f"retry backoff until {_clock(until)}", until
    if held:
        return "an identical request running now: it takes its result", None
    health = scheduler.health
    lane = sorted(agents or ())
    named = [task.agent] if task.agent and not health.in_service(task.agent) else []
    serving = [agent for agent in lane if health.in_service(agent)]
    if not serving:  # the task's own agent, or every agent that may take it, is out
        out = named or lane
        if not out:
            return "no agent qualifies for it", None
        probes = [p for agent in out if (p := health.probe_at(agent)) is not None]
        if not probes:
            return f"agent out: {_names(out)}, probing", None
        until = orchestrator.wall_time(min(probes))
        return f"agent out: {_names(out)} until {_clock(until)}", until
    capacity = {a.id: a.capacity for a in orchestrator.definitions.agents.values()}
    full = [a for a in serving if scheduler.in_flight(a) >= capacity.get(a, 0)]
    if len(full) == len(serving):
        counts = ", ".join(f"{a} {scheduler.in_flight(a)}/{capacity.get(a, 0)}" for a in full[:3])
        return f"capacity: its agents are full ({counts})", None
    if len(scheduler.running) >= scheduler.concurrency:
        return f"pool: all {scheduler.concurrency} workers busy", None
    return "its turn: tasks ahead of it in the queue go first", None


def _names(ids: list[str]) -> str:
    shown = ", ".join(ids[:3])
    return shown + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")


def _clock(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch):%H:%M:%S}"
