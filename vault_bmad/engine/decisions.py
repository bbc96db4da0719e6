"""What the scheduler decides: an assignment to start, and what each of its calls changed,
for the orchestrator to act on."""

from __future__ import annotations

from dataclasses import dataclass

from vault_bmad.engine.graph import Blocked
from vault_bmad.engine.health import HealthChange
from vault_bmad.model.definitions import TaskDef


@dataclass(frozen=True)
class Assignment:
    """Run this task on this agent now."""

    task: TaskDef
    agent_id: str
    attempt: int  # 1 for the first attempt
    probe: bool  # the agent is out and this is its probe
    predicted_seconds: float
    timeout: float  # seconds the attempt may take


@dataclass(frozen=True)
class SchedulerChange:
    """What one scheduler call changed, for the orchestrator to write back to the vault."""

    queued: tuple[str, ...] = ()  # became ready and wait in the queue
    blocked: tuple[Blocked, ...] = ()  # can never run: something upstream failed
    skipped: tuple[str, ...] = ()  # submitted skipped: ended without running
    retry: bool = False  # the failed attempt will be tried again
    retry_at: float | None = None  # not before this time (backoff)
    health: tuple[HealthChange, ...] = ()
    reassigned: tuple[str, ...] = ()  # queued tasks whose agent changed lanes
    released: tuple[str, ...] = ()  # blocked tasks waiting again: what blocked them reruns
    failed: tuple[str, ...] = ()  # queued tasks that failed: no agent left can take them
