"""Agents asking their users through the note: each task's conversation, and what a note
shows of the tasks waiting on it.

A task's conversation is its rounds: what its agent asked (`Ask`) and the user's answers.
A task waiting for answers is `needs-input`. Its note (for a workflow step, its run's
note) lists in `questions:` the open questions of every task waiting on it, in the order
they were asked, and the user answers in `answers:`, position by position. A task resumes
once each of its questions has an answer; the answers of the others stay where they are.
When the questions on a note change, vault-bmad moves each answer still wanted beside its
question, and drops the answers of rounds that are over: they stay in the note's callout.

Pure: the journal records what happens here, the orchestrator decides when.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from vault_bmad.metrics.records import AskRecord
from vault_bmad.runtimes.base import Ask, Round

OPEN_TITLE = "Waiting for your answers"
ANSWERED_TITLE = "Questions answered"
HOW_TO_ANSWER = (
    "Answer in this note's properties: `answers:`, one per question, in order; then save."
)


@dataclass(frozen=True)
class OpenAsk:
    """A round of questions waiting for its answers."""

    task_id: str
    path: str  # the note the questions are on
    step: str | None  # the workflow step that asked
    agent: str
    round: int  # 1 for the first round of the conversation
    ask: Ask
    started_at: float  # the asking attempt's start (wall clock)
    asked_at: float  # when the questions came back (wall clock)


class Conversations:
    """Each task's current conversation: rounds answered, and the round asked, if open."""

    def __init__(self) -> None:
        self._rounds: dict[str, list[Round]] = {}
        self._open: dict[str, OpenAsk] = {}

    def load(self, records: Iterable[AskRecord]) -> None:
        """The current conversations, as the store holds them (by task, then round)."""
        for record in records:
            ask = Ask(tuple(json.loads(record.questions)), record.call)
            if record.answers is None:
                self._open[record.task_id] = OpenAsk(
                    record.task_id,
                    record.path,
                    record.step,
                    record.agent,
                    record.round,
                    ask,
                    record.started_at,
                    record.asked_at,
                )
            else:
                answers = tuple(json.loads(record.answers))
                self._rounds.setdefault(record.task_id, []).append(Round(ask, answers))

    def rounds(self, task_id: str) -> tuple[Round, ...]:
        """The rounds answered so far: what the task resumes with."""
        return tuple(self._rounds.get(task_id, ()))

    def open(self, task_id: str) -> OpenAsk | None:
        return self._open.get(task_id)

    def waiting(self) -> list[OpenAsk]:
        """Every open round, oldest first."""
        return sorted(self._open.values(), key=_asked_order)

    def on_note(self, path: str) -> list[OpenAsk]:
        """The open rounds whose questions are on the note at `path`, in the order asked."""
        return sorted((o for o in self._open.values() if o.path == path), key=_asked_order)

    def asked(self, waiting: OpenAsk) -> None:
        self._open[waiting.task_id] = waiting

    def answered(self, task_id: str, answers: Sequence[str]) -> Round:
        """Close the task's open round with `answers`; returns it."""
        waiting = self._open.pop(task_id)
        done = Round(waiting.ask, tuple(answers))
        self._rounds.setdefault(task_id, []).append(done)
        return done

    def end(self, task_id: str) -> bool:
        """Forget the task's conversation (it ended, or runs afresh); False if it had none."""
        had = task_id in self._rounds or task_id in self._open
        self._rounds.pop(task_id, None)
        self._open.pop(task_id, None)
        return had


def _asked_order(waiting: OpenAsk) -> tuple[float, str]:
    return waiting.asked_at, waiting.task_id


def note_questions(waiting: Sequence[OpenAsk]) -> list[str]:
    """The note's `questions:`: each waiting task's, in the order asked; with several tasks
    on one note, a step's questions start with its name."""
    several = len(waiting) > 1
    return [
        f"{open_.step}: {question}" if several and open_.step else question
        for open_ in waiting
        for question in open_.ask.questions
    ]


def _positions(waiting: Sequence[OpenAsk]) -> dict[str, range]:
    """Where each waiting task's questions sit in the note's list."""
    found, start = {}, 0
    for open_ in waiting:
        found[open_.task_id] = range(start, start + len(open_.ask.questions))
        start += len(open_.ask.questions)
    return found


def answers_of(waiting: Sequence[OpenAsk], task_id: str, answers: Sequence[str]) -> list[str]:
    """The task's answers among the note's `answers`: one per question, "" where missing."""
    return [answers[i] if i < len(answers) else "" for i in _positions(waiting)[task_id]]


def missing(waiting: Sequence[OpenAsk], answers: Sequence[str]) -> list[int]:
    """The numbers (from 1) of the note's questions that have no answer yet."""
    total = sum(len(open_.ask.questions) for open_ in waiting)
    return [i + 1 for i in range(total) if i >= len(answers) or not answers[i]]


def realigned(
    before: Sequence[OpenAsk], after: Sequence[OpenAsk], answers: Sequence[str]
) -> list[str]:
    """The note's answers once its questions go from `before` to `after`: each answer to a
    question still open moves beside it; the others go. Trailing blanks are left out."""
    old = _positions(before)
    moved: list[str] = []
    for open_ in after:
        span = old.get(open_.task_id) if open_ in before else None  # the same round
        for n in range(len(open_.ask.questions)):
            at = span[n] if span is not None else len(answers)
            moved.append(answers[at] if at < len(answers) else "")
    while moved and not moved[-1]:
        moved.pop()
    return moved


def open_callout(
    waiting: Sequence[OpenAsk], answers: Sequence[str], earlier: Mapping[str, Sequence[Round]]
) -> str:
    """The callout of a note with questions waiting: each task's, numbered as in the
    note's `questions:` (after the rounds it had answered, from `earlier`: task id ->
    rounds), how to answer, and which are still unanswered."""
    lines = [f"> [!question] {OPEN_TITLE}"]
    number = 0
    for open_ in waiting:
        for done in earlier.get(open_.task_id, ()):
            lines.append(f"> **{_who(open_.agent, open_.step)}** asked:")
            lines += _answered_lines(done)
        lines.append(f"> **{_who(open_.agent, open_.step)}** asks:")
        for question in open_.ask.questions:
            number += 1
            lines.append(f"> {number}. {_line(question)}")
    lines += [">", f"> {HOW_TO_ANSWER}"]
    still = missing(waiting, answers)
    if answers and still:
        lines.append(f"> Still unanswered: {', '.join(map(str, still))}.")
    return "\n".join(lines)


def answered_callout(agent: str, step: str | None, rounds: Sequence[Round]) -> str:
    """The callout once a task's questions are answered: every round, with its answers."""
    lines = [f"> [!question]- {ANSWERED_TITLE}"]
    for number, done in enumerate(rounds, start=1):
        lines.append(f"> **{_who(agent, step)}** asked (round {number}):")
        lines += _answered_lines(done)
    return "\n".join(lines)


def _answered_lines(done: Round) -> list[str]:
    lines = []
    for n, (question, answer) in enumerate(zip(done.ask.questions, done.answers, strict=True)):
        lines.append(f"> {n + 1}. {_line(question)}")
        lines.append(f">    Answer: {_line(answer)}")
    return lines


def _who(agent: str, step: str | None) -> str:
    return f"{agent}, step {step}," if step else agent


def _line(text: str) -> str:
    """Text on one callout line: its whitespace, line breaks included, as single spaces."""
    return " ".join(text.split())
