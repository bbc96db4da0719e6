"""How each task moves and ends, recorded in one place: its note, the store, the run's
summary, the events the user watches and the output notes written.

Every task state change the orchestrator makes goes through `TaskJournal`, so what each
move or stop leaves behind is decided here, once; so is how a new run reads it back.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from typing import Literal

from vault_bmad.engine.attempt import AttemptResult
from vault_bmad.engine.decisions import Assignment
from vault_bmad.engine.graph import Blocked
from vault_bmad.engine.ledger import NO_PRICES, InFlight, attempt_record, task_state
from vault_bmad.engine.writeback import TaskNotes
from vault_bmad.errors import Problem
from vault_bmad.metrics.marks import invalid_marks
from vault_bmad.metrics.outcomes import AgentEvent, Event, RunSummary, TaskOutcome
from vault_bmad.metrics.records import TaskState
from vault_bmad.metrics.store import Store
from vault_bmad.model.definitions import TaskDef
from vault_bmad.model.status import IN_PROGRESS, RESET_TO_TODO
from vault_bmad.model.tasks import task_id
from vault_bmad.model.validate import InvalidMark
from vault_bmad.prices import Prices
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.writer import user_content_sha


class TaskJournal:
    """Writes each task's moves into its note, the store, `summary` and `on_event`."""

    def __init__(
        self,
        notes: TaskNotes,
        store: Store,
        summary: RunSummary,
        on_event: Callable[[Event], None] | None = None,
        prices: Prices = NO_PRICES,
    ) -> None:
        self.notes, self.store, self.summary = notes, store, summary
        self._on_event = on_event or (lambda event: None)
        self._prices = prices
        self.outputs: dict[str, str] = {}  # task id -> output note written
        self.queued_at: dict[str, float] = {}  # task id -> when it became ready (wall clock)
        self.truncated: set[str] = set()  # done tasks whose answer was cut off
        self.started_at: dict[str, float] = {}  # task id -> its first start (wall clock)
        self._runs_started: dict[str, float] = {}  # a workflow run's note -> its first step's start
        self.invalid_marks = invalid_marks(store.tasks("invalid"))  # note path -> its mark

    def recover(self) -> set[str]:
        """At start: the tasks an earlier run left unfinished (the store puts them back to
        `todo`); the outputs of those it finished are remembered."""
        interrupted = {state.task_id for state in self.store.recover()}
        for state in self.store.tasks("done"):
            if state.output:
                self.outputs[state.task_id] = state.output
            if state.truncated:
                self.truncated.add(state.task_id)
        return interrupted

    def resumed(self, task: TaskDef, interrupted: Container[str]) -> TaskDef:
        """`task` with the status to schedule it with: an interrupted or blocked task runs
        again."""
        status = task.status
        if status == "skipped":  # the run decided it, or the user did
            return task
        if task.step:  # a step's own state lives in the store, its run's in the note
            stored = self.store.task(task.id)
            resuming = status in IN_PROGRESS and stored and stored.status == "done"
            status = "done" if resuming or status == "done" else "todo"
        elif status in RESET_TO_TODO or task.id in interrupted:
            status = "todo"
        if status == "done" and task.output and task.id not in self.outputs:
            self.outputs[task.id] = task.output
        return task if status == task.status else task.model_copy(update={"status": status})

    def invalid(
        self,
        index: VaultIndex,
        problems: Iterable[Problem],
        now: float,
        paths: Container[str] | None = None,
    ) -> list[str]:
        """Mark each task note with a problem invalid (`paths`: only those), remember what it
        said then (in the store, so a restart knows), and return them all."""
        invalid = self.notes.mark_invalid(index, problems, paths)
        for path, error in invalid.items():
            note = index.get(path)
            if note is None:
                continue
            mark = self.invalid_marks[path] = InvalidMark(user_content_sha(note), error)
            self.store.save_task(
                TaskState(
                    task_id(note),
                    path,
                    "invalid",
                    error=error,
                    updated_at=now,
                    content_sha=mark.content_sha,
                )
            )
        return sorted(invalid)

    def queued(self, task: TaskDef, now: float) -> None:
        self.queued_at.setdefault(task.id, now)
        self.notes.queued(task)
        self._event("queued", task.id)

    def running(self, assignment: Assignment, started: float) -> None:
        task, agent_id = assignment.task, assignment.agent_id
        self._event("started", task.id, f"{agent_id} (attempt {assignment.attempt})")
        self._step_started(task, started)
        self.notes.running(task, agent_id, started, assignment.attempt)
        self.store.save_task(task_state(assignment, "running", started, started=started))

    def done(self, flight: InFlight, attempt: AttemptResult, output: str, ended: float) -> None:
        assignment, task = flight.assignment, flight.assignment.task
        agent_id = assignment.agent_id
        truncated = attempt.result.truncated
        self.outputs[task.id] = output
        self.truncated.discard(task.id)
        if truncated:
            self.truncated.add(task.id)
        self.notes.done(
            task,
            agent_id=agent_id,
            started=flight.started,
            completed=ended,
            attempts=assignment.attempt,
            cache=attempt.cache,
            output=output,
            truncated=truncated,
        )
        record = attempt_record(
            flight,
            "done",
            ended,
            runtime="",
            result=attempt.result,
            cache=attempt.cache,
            prices=self._prices,
        )
        self.store.record_attempt(record)
        self._ended(
            flight, "done", ended, agent_id, cache=attempt.cache, output=output, truncated=truncated
        )

    def attempt_failed(
        self, flight: InFlight, status: str, ended: float, *, runtime: str, error: str
    ) -> None:
        """An attempt that failed or timed out; the task then retries or fails."""
        record = attempt_record(
            flight, status, ended, runtime=runtime, error=error, prices=self._prices
        )
        self.store.record_attempt(record)

    def retrying(self, flight: InFlight, error: str, ended: float) -> None:
        assignment = flight.assignment
        self.queued_at[assignment.task.id] = ended  # its next attempt waits from here
        seconds = ended - flight.started
        self._event("retry", assignment.task.id, error, assignment.agent_id, seconds)
        self.store.save_task(task_state(assignment, "queued", ended, error=error))

    def failed(self, flight: InFlight, error: str, ended: float) -> None:
        """A task that ran out of attempts, or failed in a way no retry mends."""
        assignment = flight.assignment
        self.notes.failed(assignment.task, error, completed=ended, attempts=assignment.attempt)
        self._ended(flight, "failed", ended, assignment.agent_id, error=error)

    def _ended(
        self,
        flight: InFlight,
        status: Literal["done", "failed"],
        ended: float,
        agent_id: str | None,
        *,
        error: str | None = None,
        cache: str | None = None,
        output: str | None = None,
        truncated: bool = False,
    ) -> None:
        """What an attempt that ends its task leaves in the store, the summary and events."""
        assignment, task = flight.assignment, flight.assignment.task
        seconds = ended - flight.started
        self.store.save_task(
            task_state(
                assignment,
                status,
                ended,
                started=flight.started,
                ended=ended,
                error=error,
                output=output,
                truncated=truncated,
            )
        )
        self.summary.outcomes[task.id] = TaskOutcome(
            task.id,
            task.path,
            status,
            agent_id,
            assignment.attempt,
            error,
            cache,
            output,
            seconds,
            started_at=self.started_at.get(task.id, flight.started),
            completed_at=ended,
            truncated=truncated,
        )
        self._event(status, task.id, output or error or "", assignment.agent_id, seconds)

    def ended_itself(
        self,
        task: TaskDef,
        started: float,
        ended: float,
        *,
        output: str | None = None,
        error: str | None = None,
    ) -> None:
        """A task no agent runs ended: a workflow run, whose times span its steps, or a
        guidance step. It has no attempts of its own."""
        status: Literal["done", "failed"] = "failed" if error else "done"
        if task.steps:
            started = self._runs_started.pop(task.path, started)
        else:
            self._step_started(task, started)
        if output:
            self.outputs[task.id] = output
            self.notes.done(
                task,
                agent_id=None,
                started=started,
                completed=ended,
                attempts=None,
                cache=None,
                output=output,
            )
        else:
            self.notes.failed(task, error or "", completed=ended, attempts=0)
        self.store.save_task(
            TaskState(
                task.id,
                task.path,
                status,
                error=error,
                updated_at=ended,
                started_at=started,
                completed_at=ended,
                output=output,
            )
        )
        self.summary.outcomes[task.id] = TaskOutcome(
            task.id,
            task.path,
            status,
            error=error,
            output=output,
            seconds=ended - started,
            started_at=started,
            completed_at=ended,
        )
        self._event(status, task.id, output or error or "", None, ended - started)

    def skipped(self, task: TaskDef, now: float) -> None:
        """A step the run leaves out: it ends at once, with the reason."""
        reason = task.skipped_because or "skipped"
        self.outputs.pop(task.id, None)  # an earlier run's output is not this run's
        self.store.save_task(TaskState(task.id, task.path, "skipped", error=reason, updated_at=now))
        self.summary.outcomes[task.id] = TaskOutcome(task.id, task.path, "skipped", error=reason)
        self._event("skipped", task.id, reason)

    def _step_started(self, task: TaskDef, started: float) -> None:
        """The first start of a task; of a run's first step, the run's start too."""
        self.started_at.setdefault(task.id, started)
        if task.step and task.path not in self._runs_started:
            self._runs_started[task.path] = started
            self.notes.run_started(task, started)

    def blocked(self, task: TaskDef, blocked: Blocked, now: float) -> None:
        """`task` can never run: something upstream failed."""
        reason = blocked.reason
        if task.steps:
            self._runs_started.pop(task.path, None)
        if not (task.steps and blocked.failed_task in task.steps):  # the step wrote why
            self.notes.blocked(task, reason)
        self.store.save_task(TaskState(task.id, task.path, "blocked", error=reason, updated_at=now))
        self.summary.outcomes[task.id] = TaskOutcome(task.id, task.path, "blocked", error=reason)
        self._event("blocked", task.id, reason)

    def gave_up(self, task: TaskDef, reason: str, now: float) -> None:
        """A queued task failed without an attempt: no agent left can take it."""
        self.notes.failed(task, reason, completed=now, attempts=0)
        self.store.save_task(
            TaskState(task.id, task.path, "failed", error=reason, updated_at=now, completed_at=now)
        )
        self.summary.outcomes[task.id] = TaskOutcome(task.id, task.path, "failed", error=reason)
        self._event("failed", task.id, reason)

    def requeued(self, assignment: Assignment, now: float) -> None:
        """Back to `todo`: the run stopped before the attempt finished."""
        self.notes.requeue(assignment.task)
        self.store.save_task(task_state(assignment, "todo", now))

    def back_to_todo(self, task: TaskDef, now: float) -> None:
        """Back to `todo` without an attempt running: the run stopped while it was queued, or
        the task that had blocked it runs again."""
        self.notes.requeue(task)
        self.store.save_task(TaskState(task.id, task.path, "todo", updated_at=now))
        self.summary.outcomes.pop(task.id, None)
        self.queued_at.pop(task.id, None)

    def agent_event(self, kind: AgentEvent, agent_id: str, detail: str) -> None:
        """An agent (or its endpoint) went out, came back, or was given up on."""
        self._event(kind, "", detail, agent_id)

    def reopened(self, task: TaskDef) -> None:
        """The user set an ended task back to `todo`: it runs again, from its edited note."""
        self.notes.forget(task.path)
        self.queued_at.pop(task.id, None)
        self.started_at.pop(task.id, None)
        self.summary.outcomes.pop(task.id, None)

    def _event(
        self,
        kind: str,
        task_id: str,
        detail: str = "",
        agent: str | None = None,
        seconds: float | None = None,
    ) -> None:
        self._on_event(Event(kind, task_id, detail, agent, seconds))
