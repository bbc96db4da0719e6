"""The agents the balancer weighs for a task, each as it sees them at that moment.

Adaptive balancing in a big pool weighs a random few (the power of d choices), so that a
choice costs the same with 400 agents as with 16; every other strategy weighs all. A
candidate carries the agent's slots, backlog and health, and for adaptive (the only
strategy to use it) its expected time for the task: its own history pulled toward all
history's, or for an agent with none, all history's.
"""

from __future__ import annotations

import random
from collections.abc import Collection

from vault_bmad.engine.balancer import Candidate
from vault_bmad.engine.health import HealthMonitor
from vault_bmad.engine.predictor import DurationPredictor
from vault_bmad.model.definitions import AgentDef, TaskDef

MAX_CHOICES = 16  # agents the adaptive balancer weighs for one task, at most


def choices(agents: Collection[str], strategy: str, rng: random.Random) -> list[str]:
    """The agents the balancer chooses among, in a stable order."""
    if strategy == "adaptive" and len(agents) > MAX_CHOICES:
        return sorted(rng.sample(sorted(agents), MAX_CHOICES))
    return sorted(agents)


def candidate(
    agent: AgentDef,
    task: TaskDef | None,
    *,
    strategy: str,
    in_flight: int,
    backlog: int,
    health: HealthMonitor,
    predictor: DurationPredictor,
) -> Candidate:
    """The agent as the balancer sees it now, for `task` (None: for no task in particular,
    as reports and the dashboard show it)."""
    expected = None
    if task is not None and strategy == "adaptive":
        prediction = predictor.predict(task.kind, task.complexity, agent.id)
        if prediction.basis != "default":  # its own history, else what all history says
            expected = prediction.seconds
    return Candidate(
        agent_id=agent.id,
        weight=agent.weight,
        capacity=agent.capacity,
        in_flight=in_flight,
        backlog=backlog,
        health=health.score(agent.id),
        peak_latency=health.peak_latency(agent.id),
        error_rate=health.error_rate(agent.id),
        expected_seconds=expected,
    )
