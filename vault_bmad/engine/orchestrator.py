"""The orchestrator: runs a vault's tasks on an executor, writing state back as they move.

One thread (the caller's) owns the scheduler, the vault writes and the store's queue; the
executor's workers only run `attempt.perform` on plain data. So the vault is written from
one place, whatever executor runs the work.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Container
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from vault_bmad.cache.domain import file_key, named_cache
from vault_bmad.config import Settings
from vault_bmad.engine.attempt import AttemptResult, ResultCache, perform, request_key
from vault_bmad.engine.autoscale import AutoScaler
from vault_bmad.engine.health import HealthMonitor
from vault_bmad.engine.ledger import InFlight, attempt_record, observations, task_state
from vault_bmad.engine.requests import build_request
from vault_bmad.engine.scheduler import Assignment, Scheduler, SchedulerChange
from vault_bmad.engine.writeback import TaskNotes
from vault_bmad.errors import PermanentFailure, TaskTimeout, VaultBmadError
from vault_bmad.metrics.outcomes import Event, RunSummary, TaskOutcome
from vault_bmad.metrics.records import WORKFLOW_RUNTIME, CacheSample, PoolSample, TaskState
from vault_bmad.metrics.store import Store
from vault_bmad.model.definitions import Definitions, TaskDef
from vault_bmad.model.status import IN_PROGRESS, OUTCOMES, RESET_TO_TODO
from vault_bmad.runtimes.base import Runtime, RuntimeOutput
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import parse_note
from vault_bmad.vault.paths import resolve_in_vault
from vault_bmad.vault.writer import NoteWriter, wikilink

log = logging.getLogger(__name__)

PARSED_NOTES_KEPT = 1_000  # context and dependency notes, by (path, mtime, size)
HISTORY_ATTEMPTS = 5_000  # the latest attempts the duration predictor learns from at start
TIMEOUT_GRACE_S = 1.0  # a runtime enforces its own timeout; this catches one that cannot
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
        on_event: Callable[[Event], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.index, self.settings, self.store, self.runtimes = index, settings, store, runtimes
        self.cache = cache
        self.notes = TaskNotes(NoteWriter(index.root), on_written=index.update)
        self._owns_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(
            max_workers=settings.max_workers, thread_name_prefix="vault-bmad-worker"
        )
        self._on_event = on_event or (lambda event: None)
        self._clock, self._wall = clock, wall
        self.scheduler = Scheduler(
            (),
            max_concurrent_agents=settings.max_concurrent_agents,
            strategy=settings.strategy,
            aging_step=settings.aging_step_s,
            default_timeout=settings.task_timeout_s,
            default_retries=settings.retries,
            backoff_base=settings.backoff_base_s,
            backoff_max=settings.backoff_max_s,
            health=HealthMonitor(
                threshold=settings.health_threshold,
                cooldown=settings.health_cooldown_s,
                clock=clock,
            ),
            clock=clock,
        )
        self.autoscaler = AutoScaler(
            min_workers=settings.min_workers,
            max_workers=settings.max_workers,
            initial=settings.max_workers,
            scale_up_at=settings.scale_up_utilization,
            scale_down_at=settings.scale_down_utilization,
            clock=clock,
        )
        self.scheduler.set_concurrency(self.autoscaler.workers)
        self.accepting = True  # False once draining for shutdown
        self.definitions = Definitions()
        self.summary = RunSummary(started=wall())
        self._running: dict[Future[AttemptResult], InFlight] = {}
        self._writing: dict[Future[str], tuple[InFlight, AttemptResult]] = {}  # output notes
        self._twins: dict[str, list[str]] = {}  # a running request's key -> tasks held for it
        self._done: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()  # what ended, in order
        self._queued_at: dict[str, float] = {}
        self._outputs: dict[str, str] = {}  # task id -> output note written
        self._parsed = named_cache("parsed-notes", PARSED_NOTES_KEPT)

    # Feeding work in.

    def submit(self, definitions: Definitions) -> int:
        """Queue every task that should run, and return how many will; done ones count as done
        for their dependents."""
        self.definitions = definitions
        self.scheduler.set_agents(definitions.agents.values())
        history = self.store.attempts(limit=HISTORY_ATTEMPTS)
        self.scheduler.predictor.learn(observations(history, definitions.tasks))
        interrupted = {state.task_id: state for state in self.store.recover()}
        for state in self.store.tasks("done"):
            if state.output:
                self._outputs[state.task_id] = state.output
        tasks = [self._effective(task, interrupted) for task in definitions.tasks.values()]
        self._apply(self.scheduler.submit(tasks))
        return sum(1 for task in tasks if task.status == "todo")

    def _effective(self, task: TaskDef, interrupted: dict[str, TaskState]) -> TaskDef:
        """The status to schedule with: an interrupted or blocked task runs again."""
        status = task.status
        if task.step:  # a step's own state lives in the store, its run's in the note
            stored = self.store.task(task.id)
            resuming = status in IN_PROGRESS and stored and stored.status == "done"
            status = "done" if resuming or status == "done" else "todo"
        elif status in RESET_TO_TODO or task.id in interrupted:
            status = "todo"
        if status == "done" and task.output and task.id not in self._outputs:
            self._outputs[task.id] = task.output
        return task if status == task.status else task.model_copy(update={"status": status})

    def refresh(self, definitions: Definitions, touched: Container[str] = ()) -> None:
        """Take a new reading of the vault while running: new `todo` tasks queue, tasks whose
        note in `touched` was set back to `todo` run again, queued ones take their new
        priority, deleted ones go."""
        before, self.definitions = self.definitions, definitions
        if before.agents != definitions.agents:
            self._apply(self.scheduler.set_agents(definitions.agents.values()))
        new: list[TaskDef] = []
        for task in definitions.tasks.values():
            if not self.scheduler.knows(task.id):
                new.append(self._effective(task, {}))
                continue
            phase = self.scheduler.phase(task.id)
            rerun = task.status in ("todo", "invalid") and task.path in touched
            if rerun and phase in OUTCOMES:
                self.notes.forget(task.path)
                self._queued_at.pop(task.id, None)
                self.summary.outcomes.pop(task.id, None)
                self._apply(self.scheduler.reopen(task))
            elif phase == "queued" and task != before.tasks.get(task.id):
                self.scheduler.update(task)
        if new:
            self._apply(self.scheduler.submit(new))
        for gone in before.tasks.keys() - definitions.tasks.keys():
            if self.scheduler.knows(gone) and self.scheduler.phase(gone) in ("queued", "waiting"):
                self._apply(self.scheduler.cancel(gone))

    # The loop.

    def run_until_idle(self) -> RunSummary:
        """Run everything submitted to an end state."""
        while self.scheduler.pending():
            self.step()
        self.notes.flush()
        self.summary.ended = self._wall()
        return self.summary

    def step(self, max_wait: float = _IDLE_WAIT_S) -> None:
        """Start what may start, wait a little for attempts, and handle what ended."""
        if self.accepting:
            self._dispatch()
        wait_for = max_wait
        now = self._clock()
        wakeups = [r.deadline for r in self._running.values()]
        if (wakeup := self.scheduler.next_wakeup()) is not None:
            wakeups.append(wakeup)
        if wakeups:
            wait_for = max(0.0, min(max_wait, min(wakeups) - now))
        if self._running or self._writing:
            for future in self._completed(wait_for):
                if future in self._writing:
                    self._output_written(future)
                elif future in self._running:  # not one given up on for its timeout
                    self._finish(future)
        elif wait_for > 0 and self.scheduler.pending():
            time.sleep(min(wait_for, 0.05))
        self._expire_overdue()
        self._scale()

    def _completed(self, timeout: float) -> list[Future[Any]]:
        """The attempts and output writes that ended, waiting up to `timeout` for one."""
        try:
            ended = [self._done.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                ended.append(self._done.get_nowait())
            except queue.Empty:
                return ended

    def _watch(self, future: Future[Any]) -> None:
        """Have `future` report to the loop when it ends (at once, if it has)."""
        future.add_done_callback(self._done.put)

    def drain(self, grace_s: float) -> list[str]:
        """Start nothing more, let running attempts finish for up to `grace_s`, and put the
        ones still running back to `todo`; returns their ids."""
        self.accepting = False
        deadline = self._clock() + grace_s
        while (self._running or self._writing) and self._clock() < deadline:
            self.step(max_wait=min(0.1, max(0.0, deadline - self._clock())))
        unfinished = []
        for flight in self._running.values():
            task = flight.assignment.task
            self.notes.requeue(task)
            self.store.save_task(task_state(flight.assignment, "todo", self._wall()))
            unfinished.append(task.id)
        self._running.clear()
        self._twins.clear()  # tasks held for them stay queued
        return unfinished

    def close(self) -> None:
        if self._owns_executor:  # after a drain, attempts left behind are not waited for
            self.executor.shutdown(wait=self.accepting, cancel_futures=True)
        self.notes.close()
        self.store.flush()

    # One attempt.

    def _dispatch(self) -> None:
        """Start what may start. A task held for an identical request gives its slot back
        at once, so the scheduler is asked again until nothing more is held."""
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
            queued_at=self._queued_at.get(task.id, started),
            started=started,
            deadline=self._clock() + assignment.timeout + TIMEOUT_GRACE_S,
        )
        if task.steps:  # the task that started a workflow run: done when its steps are
            self._succeeded(flight, AttemptResult(self._run_summary(task), "miss"))
            return True
        agent = self.definitions.agents[assignment.agent_id]
        runtime = self.runtimes.get(agent.runtime)
        future: Future[AttemptResult]
        if runtime is None:
            future = Future()
            future.set_exception(
                VaultBmadError(f"agent {agent.id} needs runtime {agent.runtime!r}, not available")
            )
        else:
            request = build_request(
                task, agent, self.index, self.settings, self._outputs, self._read_body
            )
            if self.cache is not None:
                key = request_key(request)
                if key in self._twins and not assignment.probe:
                    self._twins[key].append(task.id)  # served from the cache once it ends
                    self.scheduler.hold(task.id)
                    return False
                self._twins[key] = []
                flight = replace(flight, key=key)
            future = self.executor.submit(perform, runtime, request, self.cache, flight.key)
        self._event("started", task.id, f"{agent.id} (attempt {assignment.attempt})")
        self.notes.running(task, agent.id, started, assignment.attempt)
        self.store.save_task(task_state(assignment, "running", started, started=started))
        self._running[future] = flight
        self._watch(future)
        return True

    def _ended(self, future: Future[AttemptResult]) -> InFlight:
        """Stop tracking an attempt; tasks held for its result queue again."""
        flight = self._running.pop(future)
        for twin in self._twins.pop(flight.key, ()) if flight.key else ():
            self.scheduler.unhold(twin)
        return flight

    def _finish(self, future: Future[AttemptResult]) -> None:
        flight = self._ended(future)
        try:
            attempt = future.result()
        except Exception as exc:  # a failing task never stops the run
            self._failed(flight, exc)
        else:
            self._succeeded(flight, attempt)

    def _succeeded(self, flight: InFlight, attempt: AttemptResult) -> None:
        """Write the output note on the write thread; the task is done once it is written."""
        task = flight.assignment.task
        agent_id = None if task.steps else flight.assignment.agent_id  # a run is done by its steps
        keys = {
            "agent": agent_id,
            "task_id": task.id,
            "truncated": attempt.result.truncated or None,
        }
        written = self.notes.submit_output(task.output, attempt.result.text, task.path, keys)
        self._writing[written] = (flight, attempt)
        self._watch(written)

    def _output_written(self, written: Future[str]) -> None:
        flight, attempt = self._writing.pop(written)
        assignment, task = flight.assignment, flight.assignment.task
        ended = self._wall()
        agent_id = None if task.steps else assignment.agent_id
        try:
            output = written.result()
        except (VaultBmadError, OSError) as exc:
            self._failed(flight, exc)
            return
        self._outputs[task.id] = output
        seconds = ended - flight.started
        self.notes.done(
            task,
            agent_id=agent_id,
            started=flight.started,
            completed=ended,
            attempts=assignment.attempt,
            cache=attempt.cache,
            output=output,
        )
        self.store.record_attempt(
            attempt_record(
                flight, "done", ended, runtime="", result=attempt.result, cache=attempt.cache
            )
        )
        self.store.save_task(
            task_state(
                assignment, "done", ended, started=flight.started, ended=ended, output=output
            )
        )
        self.summary.outcomes[task.id] = TaskOutcome(
            task.id,
            task.path,
            "done",
            agent_id,
            assignment.attempt,
            cache=attempt.cache,
            output=output,
            seconds=seconds,
        )
        self._event("done", task.id, output, assignment.agent_id, seconds)
        measured = attempt.cache == "miss" and not task.steps  # the agent's own work
        self._apply(self.scheduler.finish(task.id, ok=True, seconds=seconds, measured=measured))

    def _failed(self, flight: InFlight, exc: BaseException) -> None:
        assignment, task = flight.assignment, flight.assignment.task
        ended = self._wall()
        error = str(exc) or type(exc).__name__
        agent = self.definitions.agents.get(assignment.agent_id)
        status = "timeout" if isinstance(exc, TaskTimeout) else "failed"
        runtime = agent.runtime if agent else "?"
        self.store.record_attempt(
            attempt_record(flight, status, ended, runtime=runtime, error=error)
        )
        retry = not isinstance(exc, PermanentFailure)  # e.g. a broken template stays broken
        seconds = ended - flight.started
        change = self.scheduler.finish(task.id, ok=False, seconds=seconds, retry=retry)
        if change.retry:
            self._event("retry", task.id, error, assignment.agent_id, seconds)
            self.store.save_task(task_state(assignment, "queued", ended, error=error))
        else:
            self.notes.failed(task, error, completed=ended, attempts=assignment.attempt)
            self.store.save_task(
                task_state(
                    assignment, "failed", ended, started=flight.started, ended=ended, error=error
                )
            )
            self.summary.outcomes[task.id] = TaskOutcome(
                task.id,
                task.path,
                "failed",
                assignment.agent_id,
                assignment.attempt,
                error,
                seconds=seconds,
            )
            self._event("failed", task.id, error, assignment.agent_id, seconds)
        self._apply(change)

    def _run_summary(self, task: TaskDef) -> RuntimeOutput:
        """The output of a workflow run: a link to each step's output."""
        lines = [f"# {task.title}", "", f"Workflow run of `{task.workflow}`.", ""]
        lines += [
            f"- {step.rsplit('/', 1)[-1]}: {wikilink(self._outputs[step])}"
            for step in task.steps
            if step in self._outputs
        ]
        return RuntimeOutput("\n".join(lines) + "\n", WORKFLOW_RUNTIME)

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
            self.store.record_pool_sample(
                PoolSample(
                    decision.workers, len(self._running), self.scheduler.queued_count, self._wall()
                )
            )

    # Bookkeeping.

    def _apply(self, change: SchedulerChange) -> None:
        now = self._wall()
        for task_id in change.queued:
            task = self.definitions.tasks.get(task_id)
            if task is not None:
                self._queued_at.setdefault(task_id, now)
                self.notes.queued(task)
                self._event("queued", task_id)
        for blocked in change.blocked:
            task = self.definitions.tasks.get(blocked.task_id)
            if task is None:
                continue
            if not (task.steps and blocked.failed_task in task.steps):  # the step wrote why
                self.notes.blocked(task, blocked.reason)
            self.store.save_task(
                TaskState(task.id, task.path, "blocked", error=blocked.reason, updated_at=now)
            )
            self.summary.outcomes[task.id] = TaskOutcome(
                task.id, task.path, "blocked", error=blocked.reason
            )
            self._event("blocked", task.id, blocked.reason)

    def _read_body(self, rel_path: str) -> str | None:
        """A note's body as it is on disk now, so edits since the index was built count;
        parsed notes are cached by (path, mtime, size)."""
        try:
            path = resolve_in_vault(self.index.root, rel_path)
            key = file_key(path)
            body = self._parsed.get(key)
            if not isinstance(body, str):
                body = parse_note(rel_path, path.read_text(encoding="utf-8-sig")).body
                self._parsed.set(key, body)
        except (OSError, VaultBmadError, UnicodeDecodeError):
            return None
        return body

    def _event(
        self,
        kind: str,
        task_id: str,
        detail: str = "",
        agent: str | None = None,
        seconds: float | None = None,
    ) -> None:
        self._on_event(Event(kind, task_id, detail, agent, seconds))

    def sample_cache(self) -> None:
        """Record each cache level's counters, for hit rate over time."""
        if self.cache is None:
            return
        now = self._wall()
        for level, figures in self.cache.stats().by_level().items():
            self.store.record_cache_sample(
                CacheSample(
                    level,
                    figures["hits"],
                    figures["misses"],
                    figures["evictions"],
                    figures["expirations"],
                    figures["size"],
                    now,
                )
            )

    def sample_pool(self) -> None:
        self.store.record_pool_sample(
            PoolSample(
                self.scheduler.concurrency,
                len(self._running),
                self.scheduler.queued_count,
                self._wall(),
            )
        )

    def output_of(self, task_id: str) -> str | None:
        return self._outputs.get(task_id)
