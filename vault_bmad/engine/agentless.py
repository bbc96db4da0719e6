"""Tasks no agent runs: a workflow run, which sums up its steps, and a guidance step, which
shows its notes. The engine ends each itself once its output note is written."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

from vault_bmad.engine.decisions import SchedulerChange
from vault_bmad.engine.journal import TaskJournal
from vault_bmad.engine.scheduler import Scheduler
from vault_bmad.engine.writeback import TaskNotes, guidance_output, workflow_run_output
from vault_bmad.errors import VaultBmadError
from vault_bmad.model.definitions import TaskDef


class AgentlessTasks:
    """Their output notes being written; `start` one, hand `written` each future that ends."""

    def __init__(
        self,
        notes: TaskNotes,
        journal: TaskJournal,
        scheduler: Scheduler,
        apply: Callable[[SchedulerChange], None],
        wall: Callable[[], float],
    ) -> None:
        self._notes, self._journal, self._scheduler = notes, journal, scheduler
        self._apply, self._wall = apply, wall
        self.writing: dict[Future[str], tuple[TaskDef, float]] = {}  # -> the task, its start

    def start(self, task: TaskDef) -> Future[str]:
        """Write the task's output note; the future ends once it is written."""
        if task.steps:
            outcomes = self._journal.summary.outcomes.values()
            skipped = {o.task_id: o.error or "" for o in outcomes if o.status == "skipped"}
            text = workflow_run_output(task, self._journal.outputs, skipped)
        else:
            text = guidance_output(task)
        written = self._notes.submit_output(task.output, text, task.path, {"task_id": task.id})
        self.writing[written] = (task, self._wall())
        return written

    def written(self, written: Future[str]) -> None:
        """The output note of a task from `start` is written (or could not be): it ends."""
        task, started = self.writing.pop(written)
        ended = self._wall()
        try:
            output = written.result()
        except (VaultBmadError, OSError) as exc:
            error = str(exc) or type(exc).__name__
            self._journal.ended_itself(task, started, ended, error=error)
            self._apply(self._scheduler.end_agentless(task.id, ok=False))
            return
        self._journal.ended_itself(task, started, ended, output=output)
        self._apply(self._scheduler.end_agentless(task.id, ok=True))
