"""The records the orchestrator keeps of each attempt in flight, and what it stores of them
(attempts, task states, cache samples)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vault_bmad.engine.attempt import ResultCache
from vault_bmad.engine.decisions import Assignment
from vault_bmad.engine.predictor import Observation
from vault_bmad.metrics.records import WORKFLOW_RUNTIME, Attempt, CacheSample, TaskState
from vault_bmad.model.definitions import TaskDef
from vault_bmad.model.status import TaskStatus
from vault_bmad.prices import Prices
from vault_bmad.runtimes.base import RuntimeOutput

NO_PRICES = Prices()


@dataclass(frozen=True)
class InFlight:
    """An attempt handed to the executor."""

    assignment: Assignment
    queued_at: float  # wall clock: when the task became ready
    started: float  # wall clock
    deadline: float  # monotonic: when the orchestrator gives up on it
    key: str | None = None  # the request's cache key, while identical requests wait for it
    endpoint: str | None = None  # the server the agent's runtime talks to, if any


def attempt_record(
    flight: InFlight,
    status: str,
    ended: float,
    *,
    runtime: str,
    result: RuntimeOutput | None = None,
    cache: str = "miss",
    error: str | None = None,
    prices: Prices = NO_PRICES,
    call_s: float | None = None,
) -> Attempt:
    """The stored attempt. Its tokens and cost are what the answer took: spent on a miss,
    saved when a cache level served it. A failed attempt made one call and reports none."""
    tokens_in = (result.tokens_in or 0) if result else 0
    tokens_out = (result.tokens_out or 0) if result else 0
    cost = prices.cost(result.model, tokens_in, tokens_out) if result else None
    calls = 0 if cache != "miss" else (result.calls if result else 1)
    return Attempt(
        task_id=flight.assignment.task.id,
        agent=flight.assignment.agent_id,
        runtime=result.runtime if result else runtime,
        attempt=flight.assignment.attempt,
        status=status,
        queued_at=flight.queued_at,
        started_at=flight.started,
        ended_at=ended,
        error=error,
        cache=cache,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=cost,
        calls=calls,
        truncated=bool(result and result.truncated),
        call_s=call_s,
    )


def task_state(
    assignment: Assignment,
    status: TaskStatus,
    now: float,
    *,
    started: float | None = None,
    ended: float | None = None,
    error: str | None = None,
    output: str | None = None,
    truncated: bool = False,
) -> TaskState:
    task = assignment.task
    return TaskState(
        task_id=task.id,
        path=task.path,
        status=status,
        attempts=assignment.attempt,
        agent=assignment.agent_id,
        error=error,
        updated_at=now,
        started_at=started,
        completed_at=ended,
        output=output,
        truncated=truncated,
    )


def observations(attempts: Iterable[Attempt], tasks: Mapping[str, TaskDef]) -> list[Observation]:
    """What the duration predictor learns from stored attempts: the calls agents really made,
    not cache hits, failures or workflow runs. A task gone from the vault counts as plain."""
    found = []
    for attempt in attempts:
        if attempt.status != "done" or attempt.cache != "miss":
            continue
        if attempt.runtime == WORKFLOW_RUNTIME:
            continue
        task = tasks.get(attempt.task_id)
        kind, complexity = (task.kind, task.complexity) if task else ("task", 1.0)
        seconds = attempt.call_s
        if seconds is None:  # recorded before calls were timed
            seconds = max(0.0, attempt.ended_at - attempt.started_at)
        found.append(Observation(attempt.agent, kind, seconds, complexity))
    return found


def cache_samples(cache: ResultCache | None, now: float) -> list[CacheSample]:
    """Each cache level's counters, for hit rate over time; none without a cache."""
    return [] if cache is None else CacheSample.of(cache.stats().by_level(), now)
