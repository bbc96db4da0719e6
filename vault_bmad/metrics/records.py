"""The metrics store's records: frozen values the engine, store and analyzer pass around."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

WORKFLOW_RUNTIME = "workflow"  # the runtime of a workflow run's own attempt: not agent work


@dataclass(frozen=True)
class TaskState:
    """Where one task stands; `status` is a model.status.TaskStatus."""

    task_id: str
    path: str  # vault-relative task note
    status: str
    attempts: int = 0
    agent: str | None = None
    error: str | None = None
    updated_at: float = 0.0  # epoch seconds
    run_id: str | None = None
    content_sha: str | None = None  # of the note text the state was decided on
    started_at: float | None = None
    completed_at: float | None = None
    output: str | None = None  # vault-relative output note
    truncated: bool = False  # its answer was cut off at its length limit


@dataclass(frozen=True)
class Attempt:
    """One try at one task; times are epoch seconds."""

    task_id: str
    agent: str
    runtime: str
    attempt: int  # 1 for the first try
    status: str  # done | failed | timeout ...
    queued_at: float
    started_at: float
    ended_at: float
    error: str | None = None
    cache: str = "miss"  # the cache level that served it, or "miss"
    run_id: str | None = None
    # Tokens and cost of the answer: spent on a miss, saved when a cache level served it.
    tokens_in: int = 0  # prompt tokens
    tokens_out: int = 0  # completion tokens
    cost: float | None = None  # by the user's `llm_prices`; None when the model has none
    calls: int = 0  # runtime calls the attempt made (Dask may run one again)
    truncated: bool = False
    call_s: float | None = None  # its runtime call, as the worker timed it (None: no call)

    @property
    def wait_ms(self) -> float:
        return (self.started_at - self.queued_at) * 1000.0

    @property
    def duration_ms(self) -> float:
        return (self.ended_at - self.started_at) * 1000.0


@dataclass(frozen=True)
class AskRecord:
    """One round of questions an agent asked its user, and the answers once given.

    The rounds of a task's current conversation (`current` 1) are what it resumes with;
    a conversation ends (0) when its task ends or is run afresh, and stays for the report's
    answer times. `questions`, `answers` are JSON lists; `call` is the runtime's own record.
    """

    task_id: str
    path: str  # vault-relative task note (for a workflow step, its run's note)
    round: int  # 1 for the first round of its conversation
    agent: str
    questions: str
    call: str
    started_at: float  # the asking attempt's start
    asked_at: float  # when the questions came back
    answers: str | None = None
    answered_at: float | None = None
    current: int = 1
    tokens_in: int = 0  # what the asking call took, as for an attempt
    tokens_out: int = 0
    cost: float | None = None
    step: str | None = None  # the workflow step that asked, if a step did


@dataclass(frozen=True)
class CacheSample:
    level: str
    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int
    at: float
    ghost_hits: int = 0  # misses on keys the level had dropped to make room: more room hits

    @classmethod
    def of(cls, by_level: Mapping[str, Mapping[str, int]], at: float) -> list[CacheSample]:
        """A sample per level from a cache's counters (`TieredStats.by_level()`)."""
        return [
            cls(
                level,
                counts["hits"],
                counts["misses"],
                counts["evictions"],
                counts["expirations"],
                counts["size"],
                at,
                counts.get("ghost_hits", 0),
            )
            for level, counts in by_level.items()
        ]


@dataclass(frozen=True)
class PoolSample:
    size: int
    busy: int
    queued: int
    at: float


@dataclass(frozen=True)
class AgentChange:
    """An agent leaving service or coming back: `state` is in_service, out or probing."""

    agent: str
    state: str
    at: float
    reason: str = ""
