"""How each task moves and ends, recorded in one place: its note, the store, the run's
summary, the events the user watches and the output notes written.

Every task state change the orchestrator makes goes through `TaskJournal`, so what each
move or stop leaves behind is decided here, once; so is how a new run reads it back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Sequence
from typing import Literal

from vault_bmad.engine.asking import (
    Conversations,
    OpenAsk,
    answered_callout,
    note_questions,
    open_callout,
    realigned,
)
from vault_bmad.engine.attempt import AttemptResult
from vault_bmad.engine.decisions import Assignment
from vault_bmad.engine.graph import Blocked
from vault_bmad.engine.ledger import NO_PRICES, InFlight, attempt_record, task_state
from vault_bmad.engine.writeback import NoteQuestions, TaskNotes
from vault_bmad.errors import Problem
from vault_bmad.metrics.marks import invalid_marks
from vault_bmad.metrics.outcomes import AgentEvent, Event, RunSummary, TaskOutcome
from vault_bmad.metrics.records import AskRecord, TaskState
from vault_bmad.metrics.store import Store
from vault_bmad.model.definitions import TaskDef
from vault_bmad.model.status import IN_PROGRESS, NEEDS_INPUT, RESET_TO_TODO
from vault_bmad.model.tasks import task_id
from vault_bmad.model.validate import InvalidMark
from vault_bmad.prices import Prices
from vault_bmad.runtimes.base import Ask, Round, RuntimeOutput
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
        self.conversations = Conversations()  # what agents asked their users, and the answers
        self._callouts: dict[str, str] = {}  # a note -> the questions' callout last written
        self.invalid_marks = invalid_marks(store.tasks("invalid"))  # note path -> its mark

    def recover(self) -> set[str]:
        """At start: the tasks an earlier run left unfinished (the store puts them back to
        `todo`); the outputs of those it finished are remembered."""
        interrupted = {state.task_id for state in self.store.recover()}
        self.conversations.load(self.store.conversations())
        for state in self.store.tasks("done"):
            if state.output:
                self.outputs[state.task_id] = state.output
            if state.truncated:
                self.truncated.add(state.task_id)
        return interrupted

    def resumed(self, task: TaskDef, interrupted: Container[str]) -> TaskDef:
        """`task` with the status to schedule it with: an interrupted or blocked task runs
        again; one whose questions are still open waits for its answers (with its state lost,
        it runs afresh)."""
        status = task.status
        waiting = self.conversations.open(task.id)
        if waiting is not None and status == NEEDS_INPUT:
            self._outcome_waiting(task, waiting, attempts=0)
            return task
        if waiting is not None:  # the user set another status: the conversation is over
            self._end_conversation(task.id)
        if status == "skipped":  # the run decided it, or the user did
            return task
        if task.step:  # a step's own state lives in the store, its run's in the note
            stored = self.store.task(task.id)
            going = status in IN_PROGRESS or status == NEEDS_INPUT  # the run had not ended
            resuming = going and stored and stored.status == "done"
            status = "done" if resuming or status == "done" else "todo"
        elif status in RESET_TO_TODO or status == NEEDS_INPUT or task.id in interrupted:
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

    def running(self, assignment: Assignment, started: float, *, brief: bool = False) -> None:
        """`brief`: it ends in a moment (see `TaskNotes.running`)."""
        task, agent_id = assignment.task, assignment.agent_id
        self._event("started", task.id, f"{agent_id} (attempt {assignment.attempt})")
        self._step_started(task, started)
        if not (task.step and self.conversations.on_note(task.path)):  # else: it says needs-input
            self.notes.running(task, agent_id, started, assignment.attempt, brief=brief)
        self.store.save_task(task_state(assignment, "running", started, started=started))

    def done(self, flight: InFlight, attempt: AttemptResult, output: str, ended: float) -> None:
        assignment, task = flight.assignment, flight.assignment.task
        agent_id = assignment.agent_id
        truncated = attempt.result.truncated
        self.outputs[task.id] = output
        self._end_conversation(task.id)
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
            call_s=attempt.call_s,
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
        self._end_conversation(assignment.task.id)
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
            if not self.conversations.on_note(task.path):  # else: it says needs-input
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

    def reopened(self, task: TaskDef, now: float) -> None:
        """The user set an ended task back to `todo`: it runs again, from its edited note; a
        step the run's new reading leaves out ends skipped at once (`Scheduler.reopen`)."""
        self.notes.forget(task.path)
        self._end_conversation(task.id)
        self.queued_at.pop(task.id, None)
        self.started_at.pop(task.id, None)
        self.summary.outcomes.pop(task.id, None)
        if task.status == "skipped":
            self.skipped(task, now)

    # Asking the user.

    def asked(
        self, flight: InFlight, output: RuntimeOutput, ask: Ask, ended: float, note: NoteQuestions
    ) -> bool:
        """The attempt ended with its agent asking the user: the task waits, its questions on
        its note beside those of any other task waiting there. True when the note answers
        them already (a first round asking what the note lists, every answer given: a re-run
        asking again), so that it may go on at once."""
        assignment, task = flight.assignment, flight.assignment.task
        before = self.conversations.on_note(task.path)
        rounds = self.conversations.rounds(task.id)
        waiting = OpenAsk(
            task.id,
            task.path,
            task.step,
            assignment.agent_id,
            len(rounds) + 1,
            ask,
            flight.started,
            ended,
        )
        self.conversations.asked(waiting)
        self.store.record_ask(
            AskRecord(
                task.id,
                task.path,
                waiting.round,
                waiting.agent,
                json.dumps(ask.questions, ensure_ascii=False),
                ask.call,
                flight.started,
                ended,
                tokens_in=output.tokens_in or 0,
                tokens_out=output.tokens_out or 0,
                cost=self._prices.cost(output.model, output.tokens_in or 0, output.tokens_out or 0),
                step=task.step,
            )
        )
        self.store.save_task(task_state(assignment, NEEDS_INPUT, ended, started=flight.started))
        self._outcome_waiting(task, waiting, attempts=assignment.attempt)
        seconds = ended - flight.started
        self._event(NEEDS_INPUT, task.id, "; ".join(ask.questions), assignment.agent_id, seconds)
        answered = not rounds and not before and note.questions == ask.questions
        if answered and len(note.answers) >= len(ask.questions) and all(note.answers):
            return True
        self._show_questions(task.path, before, note.answers)
        return False

    def answered(
        self, task: TaskDef, answers: Sequence[str], at: float, note: NoteQuestions
    ) -> None:
        """The note answers each of the task's open questions: it goes on with them."""
        before = self.conversations.on_note(task.path)
        waiting = self.conversations.open(task.id)
        assert waiting is not None
        self.conversations.answered(task.id, answers)
        text = json.dumps(list(answers), ensure_ascii=False)
        self.store.record_answers(task.id, waiting.round, text, at)
        self.summary.outcomes.pop(task.id, None)
        self._event(
            "answered", task.id, f"round {waiting.round}", waiting.agent, at - waiting.asked_at
        )
        if self.conversations.on_note(task.path):
            self._show_questions(task.path, before, note.answers)
        else:
            rounds = self.conversations.rounds(task.id)
            self._show_callout(task.path, answered_callout(waiting.agent, task.step, rounds))

    def unanswered(self, task: TaskDef, note: NoteQuestions) -> None:
        """The note does not answer all the task's questions yet: its callout says which."""
        waiting = self.conversations.on_note(task.path)
        self._show_callout(task.path, open_callout(waiting, note.answers, self._earlier(waiting)))

    def cancelled(self, task_id: str) -> None:
        """A task waiting for answers is gone from the vault: so is its conversation."""
        self._end_conversation(task_id)

    def _show_questions(self, path: str, before: Sequence[OpenAsk], answers: Sequence[str]) -> None:
        after = self.conversations.on_note(path)
        moved = realigned(before, after, answers)
        callout = open_callout(after, moved, self._earlier(after))
        self._callouts[path] = callout
        changed = moved != list(answers)
        self.notes.ask(path, note_questions(after), moved if changed else None, callout)

    def _earlier(self, waiting: Sequence[OpenAsk]) -> dict[str, tuple[Round, ...]]:
        """The rounds each waiting task had answered before the one it asks now."""
        return {w.task_id: self.conversations.rounds(w.task_id) for w in waiting}

    def _show_callout(self, path: str, callout: str) -> None:
        if self._callouts.get(path) != callout:
            self._callouts[path] = callout
            self.notes.show_callout(path, callout)

    def _outcome_waiting(self, task: TaskDef, waiting: OpenAsk, attempts: int) -> None:
        self.summary.outcomes[task.id] = TaskOutcome(
            task.id,
            task.path,
            NEEDS_INPUT,
            waiting.agent,
            attempts,
            seconds=waiting.asked_at - waiting.started_at,
            started_at=self.started_at.get(task.id, waiting.started_at),
            questions=waiting.ask.questions,
        )

    def _end_conversation(self, task_id: str) -> None:
        if self.conversations.end(task_id):
            self.store.end_conversation(task_id)

    def _event(
        self,
        kind: str,
        task_id: str,
        detail: str = "",
        agent: str | None = None,
        seconds: float | None = None,
    ) -> None:
        self._on_event(Event(kind, task_id, detail, agent, seconds))
