"""What a run tells the world: events as they happen, each task's outcome, the summary.

The engine makes them; the reports, the progress lines and the service read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from vault_bmad.model.status import Stop


@dataclass(frozen=True)
class TaskOutcome:
    task_id: str
    path: str
    status: Stop  # an end state, or needs-input: waiting for its user's answers
    agent: str | None = None
    attempts: int = 0
    error: str | None = None
    cache: str | None = None
    output: str | None = None
    seconds: float = 0.0  # how long its last attempt took (a run: its steps' span)
    started_at: float | None = None  # Unix seconds: its first start; None if it never ran
    completed_at: float | None = None  # Unix seconds: when it ended, if it ran
    questions: tuple[str, ...] = ()  # needs-input: what its agent asks
    truncated: bool = False  # the answer was cut off at its length limit


# What happens to an agent: out (taken out, why, until when), back in service, or its
# endpoint given up on for the rest of a `run`.
AgentEvent = Literal["out", "back", "gave-up"]
AGENT_EVENTS: tuple[AgentEvent, ...] = get_args(AgentEvent)


@dataclass(frozen=True)
class Event:
    """Something the user may want to see as it happens (progress lines, the dashboard)."""

    # queued | started | retry | needs-input | answered | done | failed | blocked | skipped;
    # AGENT_EVENTS
    kind: str
    task_id: str  # "" for an event about an agent or its endpoint
    detail: str = ""
    agent: str | None = None
    seconds: float | None = None  # how long the attempt took, when one ended


@dataclass
class RunSummary:
    outcomes: dict[str, TaskOutcome] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    stopped: list[str] = field(default_factory=list)  # back to todo: the run was stopped

    def count(self, status: Stop) -> int:
        return sum(1 for outcome in self.outcomes.values() if outcome.status == status)
