"""What a run tells the world: events as they happen, each task's outcome, the summary.

The engine makes them; the reports, the progress lines and the service read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Event:
    """Something the user may want to see as it happens (progress lines, the dashboard)."""

    kind: (
        str  # queued | started | retry | needs-input | answered | done | failed | blocked | skipped
    )
    task_id: str
    detail: str = ""
    agent: str | None = None
    seconds: float | None = None  # how long the attempt took, when one ended


@dataclass
class RunSummary:
    outcomes: dict[str, TaskOutcome] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0

    def count(self, status: Stop) -> int:
        return sum(1 for outcome in self.outcomes.values() if outcome.status == status)
