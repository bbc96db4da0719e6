"""The engine's side of agents asking their users: an attempt that asked parks its task,
holding nothing, and answers found in its note send it on.

It stands between the journal (what is recorded and written), the scheduler (what runs)
and the notes (what the user wrote); `engine/asking.py` holds the rules it follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from vault_bmad.engine.asking import answers_of
from vault_bmad.engine.decisions import SchedulerChange
from vault_bmad.engine.journal import TaskJournal
from vault_bmad.engine.ledger import InFlight
from vault_bmad.engine.scheduler import Scheduler
from vault_bmad.engine.writeback import TaskNotes
from vault_bmad.model.definitions import TaskDef
from vault_bmad.runtimes.base import Ask, RuntimeOutput


class Questions:
    """Parks the tasks whose agents ask, and sends them on once their notes answer."""

    def __init__(
        self,
        journal: TaskJournal,
        notes: TaskNotes,
        scheduler: Scheduler,
        limit: int,
        wall: Callable[[], float],
        apply: Callable[[SchedulerChange], None],
    ) -> None:
        self._journal, self._notes, self._scheduler = journal, notes, scheduler
        self._limit, self._wall, self._apply = limit, wall, apply

    def too_many(self, task_id: str) -> str | None:
        """Why the task may not ask once more (its rounds are used up), or None."""
        if len(self._journal.conversations.rounds(task_id)) < self._limit:
            return None
        return f"its agent asked more than {self._limit} rounds of questions (max_question_rounds)"

    def asked(self, flight: InFlight, output: RuntimeOutput, ask: Ask) -> None:
        """The attempt ended asking: the task waits for the answers in its note, holding
        no slot, unless the note answers them already (a re-run asking again)."""
        task = flight.assignment.task
        ended = self._wall()
        self._apply(self._scheduler.ask(task.id, seconds=ended - flight.started))
        note = self._notes.questions(task.path)
        if self._journal.asked(flight, output, ask, ended, note):
            self._journal.answered(task, note.answers[: len(ask.questions)], ended, note)
            self._apply(self._scheduler.answered(task))

    def take_answers(self, tasks: Iterable[TaskDef]) -> int:
        """Each task waiting for input whose note now answers all its questions goes on; for
        the others, the note says which answers are missing. Returns how many go on."""
        going = 0
        for task in tasks:
            waiting = self._journal.conversations.open(task.id)
            if waiting is None:
                continue
            note = self._notes.questions(task.path)
            on_note = self._journal.conversations.on_note(task.path)
            answers = answers_of(on_note, task.id, note.answers)
            if not all(answers):
                self._journal.unanswered(task, note)
                continue
            now = self._wall()
            saved = note.mtime if note.mtime is not None else now  # when the user answered
            self._journal.answered(task, answers, min(max(saved, waiting.asked_at), now), note)
            self._apply(self._scheduler.answered(task))
            going += 1
        return going
