"""The orchestrator: runs a vault's tasks on an executor, writing state back as they move.

One thread (the caller's) owns the scheduler, the vault writes and the store's queue; the
executor's workers only run `attempt.perform` on plain data. So the vault is written from
one place, whatever executor runs the work.

A failed attempt is classified once (`errors.classify`): a deterministic failure fails
its task at once and says nothing of the agent; a transient one is retried after a
backoff (at least what the server asked) and counts toward the agent's health, unless the
fault lay elsewhere. Endpoints that cannot be reached are watched (`engine/endpoints.py`);
with `give_up`, as in `run`, the tasks waiting for one that stays down fail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import replace

from vault_bmad.cache.tiered import COALESCED
from vault_bmad.config import Settings
from vault_bmad.engine.agentless import AgentlessTasks
from vault_bmad.engine.attempt import AttemptResult, ResultCache, perform, request_key
from vault_bmad.engine.completions import Completions
from vault_bmad.engine.decisions import Assignment, SchedulerChange
from vault_bmad.engine.endpoints import Endpoints
from vault_bmad.engine.journal import TaskJournal
from vault_bmad.engine.ledger import InFlight, cache_samples, observations
from vault_bmad.engine.outages import Outages
from vault_bmad.engine.questions import Questions
from vault_bmad.engine.requests import NoteBodies, build_request
from vault_bmad.engine.reruns import Reruns
from vault_bmad.engine.tuning import tuned_autoscaler, tuned_scheduler
from vault_bmad.engine.twins import Twins
from vault_bmad.engine.writeback import TaskNotes
from vault_bmad.errors import (
    PermanentFailure,
    RuntimeRefused,
    TaskTimeout,
    VaultBmadError,
    classify,
)
from vault_bmad.metrics.outcomes import Event, RunSummary
from vault_bmad.metrics.records import PoolSample
from vault_bmad.metrics.store import Store
from vault_bmad.model.definitions import TaskDef
from vault_bmad.model.status import NEEDS_INPUT, REOPENABLE
from vault_bmad.model.validate import Definitions, build_definitions
from vault_bmad.runtimes.base import Ask, Runtime, RuntimeOutput
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.writer import NoteWriter, wikilink

log = logging.getLogger(__name__)

HISTORY_ATTEMPTS = 5_000  # the latest attempts the duration predictor learns from at start
TIMEOUT_GRACE_S = 1.0  # a runtime enforces its own timeout; this catches one that cannot
STOP_GRACE_S = 1.0  # on a stop, attempts about to end may; the rest are dropped
_IDLE_WAIT_S = 0.5


class Orchestrator:
    """Runs tasks to an end state; see the module docstring."""

    def __init__(
        self,
        index: VaultIndex,
        settings: Settings,
        store: Store,
        runtimes: dict[str, Runtime],
        *,
        executor: Executor | None = None,
        cache: ResultCache | None = None,
        writer: NoteWriter | None = None,
        on_event: Callable[[Event], None] | None = None,
        give_up: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """`give_up`: fail the tasks waiting for an endpoint unreachable for
        `llm_give_up_s` (as `run` does); without it they wait (as `serve` does). `writer`
        writes the notes (by default a NoteWriter on the index's vault that keeps the
        index current)."""
        self.index, self.settings, self.store, self.runtimes = index, settings, store, runtimes
        self.cache = cache
        self.notes = TaskNotes(
            writer or NoteWriter(index.root, on_written=index.learn),
            on_rerun=lambda path: self._reruns.ask(path),
        )
        self._owns_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(
            max_workers=settings.max_workers, thread_name_prefix="vault-bmad-worker"
        )
        self._clock, self._wall = clock, wall
        self.scheduler = tuned_scheduler(settings, clock)
        self.autoscaler = tuned_autoscaler(settings, clock)
        self.scheduler.set_concurrency(self.autoscaler.workers)
        self.accepting = True  # False once draining for shutdown
        self.definitions = Definitions()
        self.summary = RunSummary(started=wall())
        self.journal = TaskJournal(self.notes, store, self.summary, on_event, settings.llm_prices)
        self.endpoints = Endpoints(settings.llm_give_up_s, clock=clock, wall=wall)
        self.questions = Questions(
            self.journal,
            self.notes,
            self.scheduler,
            settings.max_question_rounds,
            wall,
            self._apply,
        )
        self._reruns = Reruns(self.journal, self.scheduler, wall, self._apply)
        self._outages = Outages(
            self.endpoints, self.scheduler, self.journal, store, wall, self._apply
        )
        self._give_up = give_up
        self._running: dict[Future[AttemptResult], InFlight] = {}
        # Output notes being written: the attempt, and when it ended (wall clock).
        self._writing: dict[Future[str], tuple[InFlight, AttemptResult, float]] = {}
        self._agentless = AgentlessTasks(
            self.notes, self.journal, self.scheduler, self._apply, wall
        )
        self._twins = Twins()  # tasks held for an identical request running
        self._completions = Completions()  # attempts and output writes that end
        self._bodies = NoteBodies(index.root)

    # Feeding work in.

    def read_vault(self, touched: Container[str] | None = None) -> tuple[Definitions, list[str]]:
        """The vault's definitions as the index holds it now, and its invalid task notes, each
        marked (`touched`: only those just changed)."""
        definitions = build_definitions(
            self.index, self.journal.invalid_marks, self.settings.output_folder
        )
        invalid = self.journal.invalid(self.index, definitions.problems, self._wall(), touched)
        return definitions, invalid

    def submit(self, definitions: Definitions) -> int:
        """Queue every task that should run, and return how many will; done ones count as done
        for their dependents."""
        self.definitions = definitions
        self.scheduler.set_agents(definitions.agents.values())
        history = self.store.attempts(limit=HISTORY_ATTEMPTS)
        self.scheduler.predictor.learn(observations(history, definitions.tasks))
        interrupted = self.journal.recover()
        tasks = [self.journal.resumed(task, interrupted) for task in definitions.tasks.values()]
        self._apply(self.scheduler.submit(tasks))
        answered = self.questions.take_answers(task for task in tasks if task.status == NEEDS_INPUT)
        return answered + sum(1 for task in tasks if task.status == "todo")

    def refresh(self, definitions: Definitions, touched: Container[str] = ()) -> None:
        """Take a new reading of the vault while running: new `todo` tasks queue, tasks whose
        note in `touched` was set back to `todo` run again, tasks waiting for answers take
        those their note in `touched` gives, queued ones take their new priority, deleted
        ones go."""
        before, self.definitions = self.definitions, definitions
        if before.agents != definitions.agents:
            self._apply(self.scheduler.set_agents(definitions.agents.values()))
        new: list[TaskDef] = []
        settled: dict[str, bool] = {}  # note path -> its edit asks for a re-run
        answered: list[TaskDef] = []
        for task in definitions.tasks.values():
            if not self.scheduler.knows(task.id):
                new.append(self.journal.resumed(task, ()))
                continue
            phase = self.scheduler.phase(task.id)
            run = definitions.tasks.get(task.run_id or "", task)  # a step reruns with its run
            rerun = run.status in ("todo", "invalid") and task.path in touched
            if rerun and phase in REOPENABLE:
                if task.path not in settled:  # the run's note and its steps: decided once
                    settled[task.path] = task.status == "invalid" or self.notes.settle_edit(
                        task.path
                    )
                if settled[task.path]:
                    self._reruns.reopen(task)
            elif phase == NEEDS_INPUT and task.path in touched:
                answered.append(task)
            elif phase == "queued" and task != before.tasks.get(task.id):
                self.scheduler.update(task)
        if new:
            self._apply(self.scheduler.submit(new))
        self.questions.take_answers(answered)
        for gone in before.tasks.keys() - definitions.tasks.keys():
            left = self.scheduler.phase(gone) if self.scheduler.knows(gone) else None
            if left in ("queued", "waiting", NEEDS_INPUT):
                self.journal.cancelled(gone)
                self._apply(self.scheduler.cancel(gone))

    # The loop.

    def run_until_idle(self, stop: Callable[[], bool] = lambda: False) -> RunSummary:
        """Run everything submitted to an end state, and again what the user set back to
        `todo` meanwhile; or until `stop()` says to stop: then what is running or queued
        goes back to `todo` (`summary.stopped`)."""
        while self.scheduler.pending() and not stop():
            while self.scheduler.pending() and not stop():
                self.step()
            self.notes.flush()  # a write-back may find a note set back to todo
            self._reruns.take(self.definitions.tasks)
        if self.scheduler.pending():
            self.summary.stopped = self.drain(STOP_GRACE_S)
        self.notes.flush()
        self.summary.ended = self._wall()
        return self.summary

    def step(self, max_wait: float = _IDLE_WAIT_S) -> None:
        """Start what may start, wait a little for attempts, and handle what ended."""
        self._reruns.take(self.definitions.tasks)
        if self.accepting:
            self._dispatch()
        self.notes.publish()  # what is still queued now did not start at once
        wait_for = max_wait
        now = self._clock()
        wakeups = [r.deadline for r in self._running.values()]
        for wakeup in (self.scheduler.next_wakeup(), self.endpoints.next_check()):
            if wakeup is not None:
                wakeups.append(wakeup)
        if wakeups:
            wait_for = max(0.0, min(max_wait, min(wakeups) - now))
        if self._running or self._writing or self._agentless.writing:
            for future in self._completions.wait(wait_for):
                if future in self._writing:
                    self._output_written(future)
                elif future in self._agentless.writing:
                    self._agentless.written(future)
                elif future in self._running:  # not one given up on for its timeout
                    self._finish(future)
        elif wait_for > 0 and self.scheduler.pending():
            time.sleep(min(wait_for, 0.05))
        self._expire_overdue()
        if self._give_up:
            self._outages.give_up_on_dead()
        self._scale()

    def drain(self, grace_s: float) -> list[str]:
        """Start nothing more, let running attempts finish for up to `grace_s`, give up on
        the rest (their results are dropped), and put every task still running or queued
        back to `todo`; returns their ids. Outputs being written are waited for."""
        self.accepting = False
        deadline = self._clock() + grace_s
        while self._running and self._clock() < deadline:
            self.step(max_wait=min(0.1, max(0.0, deadline - self._clock())))
        self._completions.wait(0.0)  # what ended meanwhile is handled below
        for future in list(self._writing):  # an output note being written: its task ends
            future.exception()
            self._output_written(future)
        for own in list(self._agentless.writing):
            own.exception()
            self._agentless.written(own)
        now = self._wall()
        unfinished = []
        for flight in self._running.values():
            self.journal.requeued(flight.assignment, now)
            unfinished.append(flight.assignment.task.id)
        for task_id in self.scheduler.queued_tasks():
            task = self.definitions.tasks.get(task_id)
            if task is not None:
                self.journal.back_to_todo(task, now)
                unfinished.append(task_id)
        self._running.clear()
        self._twins.clear()
        return sorted(unfinished)

    def close(self) -> None:
        if self._owns_executor:  # after a drain, attempts left behind are not waited for
            self.executor.shutdown(wait=self.accepting, cancel_futures=True)
        self.notes.close()
        self.store.flush()

    # One attempt.

    def _dispatch(self) -> None:
        """Start what may start. A task held for an identical request gives its slot back
        at once, so the scheduler is asked again until nothing more is held."""
        for task in self.scheduler.take_agentless():
            self._completions.watch(self._agentless.start(task))
        held = True
        while held:
            started = [self._start(assignment) for assignment in self.scheduler.dispatch()]
            held = not all(started)

    def _start(self, assignment: Assignment) -> bool:
        """Start an attempt; False when the task was held aside instead (see `_twins`)."""
        task = assignment.task
        started = self._wall()
        flight = InFlight(
            assignment,
            queued_at=self.journal.queued_at.get(task.id, started),
            started=started,
            deadline=self._clock() + assignment.timeout + TIMEOUT_GRACE_S,
        )
        agent = self.definitions.agents[assignment.agent_id]
        runtime = self.runtimes.get(agent.runtime)
        future: Future[AttemptResult]
        if runtime is None:
            future = Future()
            future.set_exception(
                RuntimeRefused(f"agent {agent.id} needs runtime {agent.runtime!r}, not available")
            )
        else:
            flight = replace(flight, endpoint=getattr(runtime, "endpoint", None))
            rounds = self.journal.conversations.rounds(task.id)
            request = build_request(
                task,
                agent,
                self.index,
                self.settings,
                self.journal.outputs,
                self._bodies.read,
                rounds,
            )
            if self.cache is not None and not rounds:  # answers never go through the cache
                key = request_key(request)
                if self._twins.hold(key, assignment):
                    self.scheduler.hold(task.id)
                    return False
                flight = replace(flight, key=key)
            future = self.executor.submit(perform, runtime, request, self.cache, flight.key)
        self.journal.running(assignment, started)
        self._running[future] = flight
        self._completions.watch(future)
        return True

    def _rerun_if_asked(self, task_id: str) -> None:
        self._reruns.after_end(self.definitions.tasks.get(task_id))

    def _ended(self, future: Future[AttemptResult], answer: AttemptResult | None = None) -> None:
        """Stop tracking an attempt. The tasks held for it take its `answer` (given when it
        succeeded), or queue again to run for themselves."""
        flight = self._running.pop(future)
        for held in self._twins.ended(flight.key, answer):
            self.scheduler.unhold(held.task.id)
        self._serve_twins()

    def _finish(self, future: Future[AttemptResult]) -> None:
        flight = self._running[future]
        try:
            attempt = future.result()
        except Exception as exc:  # a failing task never stops the run
            self._ended(future)
            self._failed(flight, exc)
            return
        if attempt.result.ask is not None:
            self._ended(future)
            self._asked(flight, attempt.result, attempt.result.ask)
        else:
            self._succeeded(flight, attempt)
            self._ended(future, attempt)

    def _serve_twins(self) -> None:
        """Tasks held for an identical request that succeeded take its answer: no call, no
        slot (they are `coalesced` with it); each is done once its output note is written."""
        for held, answer in self._twins.to_serve():
            task_id = held.task.id
            if self.definitions.tasks.get(task_id) != held.task:  # its note changed meanwhile
                self._twins.served(task_id)
                self.scheduler.unhold(task_id)
                continue
            assignment = self.scheduler.serve_held(task_id, held.agent_id)
            if assignment is None:  # gone meanwhile
                self._twins.served(task_id)
                continue
            now = self._wall()
            queued_at = self.journal.queued_at.get(task_id, now)
            flight = InFlight(assignment, queued_at, now, self._clock() + assignment.timeout)
            self.journal.running(assignment, now, brief=True)
            self._succeeded(flight, replace(answer, cache=COALESCED, call_s=None))

    def _asked(self, flight: InFlight, output: RuntimeOutput, ask: Ask) -> None:
        """The agent asked its user; past `max_question_rounds` rounds the task fails."""
        why = self.questions.too_many(flight.assignment.task.id)
        if why is not None:
            self._failed(flight, PermanentFailure(why))
            return
        if flight.endpoint:  # it answered
            self.endpoints.observe(flight.endpoint, flight.assignment.agent_id, None)
        self.questions.asked(flight, output, ask)
        self._rerun_if_asked(flight.assignment.task.id)  # set back to todo while it ran

    def _succeeded(self, flight: InFlight, attempt: AttemptResult) -> None:
        """Write the output note on the write thread; the task is done once it is written.
        Meanwhile its agent may take other work."""
        task = flight.assignment.task
        self.scheduler.release(task.id)
        keys: dict[str, object] = {"agent": flight.assignment.agent_id, "task_id": task.id}
        if task.updates in self.journal.outputs:  # the version it revises stays as it was
            keys["updates"] = wikilink(self.journal.outputs[task.updates])
        written = self.notes.submit_output(task.output, attempt.result.text, task.path, keys)
        self._writing[written] = (flight, attempt, self._wall())
        self._completions.watch(written)

    def _output_written(self, written: Future[str]) -> None:
        flight, attempt, answered = self._writing.pop(written)
        task, ended = flight.assignment.task, self._wall()
        self._twins.served(task.id)
        try:
            output = written.result()
        except (VaultBmadError, OSError) as exc:
            self._failed(flight, exc)
        else:
            self.journal.done(flight, attempt, output, ended)
            seconds = attempt.call_s if attempt.call_s is not None else answered - flight.started
            measured = attempt.cache == "miss"  # the agent's own work
            if measured and flight.endpoint:
                self.endpoints.observe(flight.endpoint, flight.assignment.agent_id, None)
            change = self.scheduler.finish(task.id, ok=True, seconds=seconds, measured=measured)
            self._apply(change)
            self._rerun_if_asked(task.id)
        self._serve_twins()

    def _failed(self, flight: InFlight, exc: BaseException) -> None:
        assignment = flight.assignment
        ended = self._wall()
        failure = classify(exc)
        agent = self.definitions.agents.get(assignment.agent_id)
        status = "timeout" if failure.timed_out else "failed"
        runtime = agent.runtime if agent else "?"
        error = failure.message
        self.journal.attempt_failed(flight, status, ended, runtime=runtime, error=error)
        if flight.endpoint:
            self.endpoints.observe(flight.endpoint, assignment.agent_id, failure)
        change = self.scheduler.finish(
            assignment.task.id,
            ok=False,
            seconds=ended - flight.started,
            retry=failure.retryable and not self._outages.gone(failure),
            measured=failure.counts_toward_health,
            wait_at_least=failure.retry_after_s,
            error=error,
        )
        if change.retry:
            self.journal.retrying(flight, error, ended)
        else:
            self.journal.failed(flight, error, ended)
        self._apply(change)
        self._rerun_if_asked(assignment.task.id)

    def _expire_overdue(self) -> None:
        now = self._clock()
        for future, running in list(self._running.items()):
            if now >= running.deadline:
                self._ended(future)  # the worker may go on; its result is dropped
                seconds = running.assignment.timeout
                self._failed(running, TaskTimeout(f"timed out after {seconds:g} s"))

    def _scale(self) -> None:
        load = len(self.scheduler.running) + self.scheduler.queued_count
        decision = self.autoscaler.observe(load / max(1, self.scheduler.concurrency))
        if decision is not None:
            log.info(decision.reason)
            self.scheduler.set_concurrency(decision.workers)
            self.sample_pool(decision.workers)

    # Bookkeeping.

    def _apply(self, change: SchedulerChange, reason: str = "") -> None:
        now = self._wall()
        tasks = self.definitions.tasks
        for task_id in change.released:
            if task_id in tasks:
                self.journal.back_to_todo(tasks[task_id], now)
        for task_id in change.failed:
            if task_id in tasks:
                self.journal.gave_up(tasks[task_id], reason, now)
        for task_id in change.queued:
            if task_id in tasks:
                self.journal.queued(tasks[task_id], now)
        for blocked in change.blocked:
            if blocked.task_id in tasks:
                self.journal.blocked(tasks[blocked.task_id], blocked, now)
        for task_id in change.skipped:  # news only in a run that runs, not one long done
            task = tasks.get(task_id)
            run = task.run_id if task is not None else None
            if task and run and self.scheduler.knows(run) and self.scheduler.phase(run) != "done":
                self.journal.skipped(task, now)
        for health in change.health:
            self._outages.health_changed(health)

    def sample_cache(self) -> None:
        """Record each cache level's counters, for hit rate over time."""
        for sample in cache_samples(self.cache, self._wall()):
            self.store.record_cache_sample(sample)

    def sample_pool(self, workers: int | None = None) -> None:
        """Record the pool's size (`workers`, or the scheduler's concurrency) and load."""
        workers = self.scheduler.concurrency if workers is None else workers
        queued = self.scheduler.queued_count
        sample = PoolSample(workers, len(self._running), queued, self._wall())
        self.store.record_pool_sample(sample)

    def output_of(self, task_id: str) -> str | None:
        return self.journal.outputs.get(task_id)

    def running_since(self) -> dict[str, float]:
        """When each running task's attempt started (wall clock)."""
        return {f.assignment.task.id: f.started for f in self._running.values()}

    def wall_time(self, moment: float) -> float:
        """A moment of the scheduler's clock (a retry's or a probe's), on the wall clock."""
        return self._wall() + (moment - self._clock())
