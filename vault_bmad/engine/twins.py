"""Identical requests in flight: the first runs, the others wait for its answer.

A task whose request (its cache key) is already running is held aside (`Scheduler.hold`).
When that attempt succeeds, the held tasks take its answer: no call and no slot, only their
own output notes to write. They are served a few at a time (`AT_ONCE`): all of a burst at
once would compete for the interpreter and the disk, each then waiting for the whole burst.
If the attempt fails, or its agent asks its user, the held tasks queue again to run for
themselves.
"""

from __future__ import annotations

from collections import deque

from vault_bmad.engine.attempt import AttemptResult
from vault_bmad.engine.decisions import Assignment

AT_ONCE = 4  # held tasks whose output notes are written at one time


class Twins:
    """Held tasks by the request they wait for, and those answered, waiting to be served."""

    def __init__(self) -> None:
        self._held: dict[str, list[Assignment]] = {}  # a running request's key -> held tasks
        self._answered: deque[tuple[Assignment, AttemptResult]] = deque()
        self._serving: set[str] = set()  # task ids taken by `to_serve`, until `served`

    def hold(self, key: str, assignment: Assignment) -> bool:
        """Whether the task must wait: a request with `key` is running (a probe never
        waits). Else its own request is the one the next with `key` waits for."""
        if key in self._held and not assignment.probe:
            self._held[key].append(assignment)
            return True
        self._held[key] = []
        return False

    def ended(self, key: str | None, answer: AttemptResult | None) -> list[Assignment]:
        """The request with `key` ended. With its `answer`, the tasks held for it wait to be
        served; without one, they are returned, to queue again."""
        held = self._held.pop(key, []) if key is not None else []
        if answer is None:
            return held
        self._answered.extend((assignment, answer) for assignment in held)
        return []

    def to_serve(self) -> list[tuple[Assignment, AttemptResult]]:
        """Answered tasks to serve now: as many as keep `AT_ONCE` being served."""
        taken = []
        while self._answered and len(self._serving) < AT_ONCE:
            assignment, answer = self._answered.popleft()
            self._serving.add(assignment.task.id)
            taken.append((assignment, answer))
        return taken

    def served(self, task_id: str) -> None:
        """A task from `to_serve` ended (or was not served after all)."""
        self._serving.discard(task_id)

    def clear(self) -> None:
        self._held.clear()
        self._answered.clear()
        self._serving.clear()
