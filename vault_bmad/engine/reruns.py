"""Re-runs the user asks for: a task note set back to `todo`.

A note set back while its task has ended runs again at once (`reopen`). One set back while
vault-bmad still has the task (queued, running, its output being written) is kept by the
write-back as the user's own and reported from the write thread (`ask`); the task then
runs again now if it has ended meanwhile, or as soon as it ends (`after_end`).
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Mapping

from vault_bmad.engine.decisions import SchedulerChange
from vault_bmad.engine.journal import TaskJournal
from vault_bmad.engine.scheduler import Scheduler
from vault_bmad.model.definitions import TaskDef
from vault_bmad.model.status import REOPENABLE


class Reruns:
    """The tasks to run again; see the module docstring."""

    def __init__(
        self,
        journal: TaskJournal,
        scheduler: Scheduler,
        wall: Callable[[], float],
        apply: Callable[[SchedulerChange], None],
    ) -> None:
        self._journal, self._scheduler, self._wall, self._apply = journal, scheduler, wall, apply
        self._asked: queue.SimpleQueue[str] = queue.SimpleQueue()  # note paths
        self._when_ended: set[str] = set()  # task ids

    def ask(self, path: str) -> None:
        """The note at `path` was set back to `todo` while vault-bmad had its task (any
        thread); `take` acts on it."""
        self._asked.put(path)

    def take(self, tasks: Mapping[str, TaskDef]) -> None:
        """Run again the tasks whose notes were set back (`ask`): now if they ended, or
        once they end."""
        while True:
            try:
                path = self._asked.get_nowait()
            except queue.Empty:
                return
            for task in [t for t in tasks.values() if t.path == path]:
                if not self._scheduler.knows(task.id):
                    continue
                if self._scheduler.phase(task.id) in REOPENABLE:
                    self.reopen(task)
                else:
                    self._when_ended.add(task.id)

    def reopen(self, task: TaskDef) -> None:
        """Run an ended task again, from its note as it is now."""
        self._when_ended.discard(task.id)
        self._journal.reopened(task, self._wall())
        self._apply(self._scheduler.reopen(task))

    def after_end(self, task: TaskDef | None) -> None:
        """The task may have ended: run it again if its note was set back meanwhile."""
        if task is None or task.id not in self._when_ended:
            return
        if self._scheduler.phase(task.id) in REOPENABLE:
            self.reopen(task)
