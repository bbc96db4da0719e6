"""A frozen picture of the engine at one moment, for the API, /metrics and the dashboard.

The engine thread takes a snapshot after it changes something; web threads only ever
read the latest one, so they never touch the scheduler while it moves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from vault_bmad.engine.endpoints import EndpointView
from vault_bmad.engine.orchestrator import Orchestrator
from vault_bmad.errors import Problem
from vault_bmad.model.status import Phase, TaskStatus


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
    truncated: bool = False  # its answer was cut off at its length limit
    questions: tuple[str, ...] = ()  # needs-input: what its agent asks
    asked_at: float | None = None  # needs-input: since when (Unix seconds)


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
    outcomes = orchestrator.summary.outcomes
    conversations = orchestrator.journal.conversations
    tasks = []
    for task in definitions.tasks.values():
        asked = conversations.open(task.id)
        phase = scheduler.phase(task.id) if scheduler.knows(task.id) else task.status
        outcome = outcomes.get(task.id)
        assignment = running.get(task.id)
        blocked = scheduler.blocked(task.id) if scheduler.knows(task.id) else None
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
                truncated=task.id in orchestrator.journal.truncated,
                questions=asked.ask.questions if asked else (),
                asked_at=asked.asked_at if asked else None,
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
