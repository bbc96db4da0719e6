"""Questions agents asked their users in a period: how many, and how long people took to
answer, for the report note and `vault-bmad report --format json`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vault_bmad.metrics.figures import percentile
from vault_bmad.metrics.records import AskRecord


@dataclass(frozen=True)
class Waiting:
    """A round still unanswered at the period's end."""

    task_id: str
    path: str
    agent: str
    questions: tuple[str, ...]
    asked_at: float


@dataclass(frozen=True)
class QuestionFigures:
    asked: int  # rounds of questions asked in the period
    answered: int  # rounds answered in the period
    answer_p50_s: float | None  # how long people took to answer those
    answer_p95_s: float | None
    answer_max_s: float | None
    waiting: tuple[Waiting, ...]  # unanswered at the period's end, the oldest first


def question_figures(asks: Sequence[AskRecord], since: float, until: float) -> QuestionFigures:
    """The figures of the rounds in `asks` for the period `[since, until)`."""
    answer_times = [
        ask.answered_at - ask.asked_at
        for ask in asks
        if ask.answered_at is not None and since <= ask.answered_at < until
    ]
    waiting = [
        Waiting(ask.task_id, ask.path, ask.agent, tuple(json.loads(ask.questions)), ask.asked_at)
        for ask in asks
        if ask.asked_at < until and _unanswered_at(ask, until)
    ]
    return QuestionFigures(
        asked=sum(1 for ask in asks if since <= ask.asked_at < until),
        answered=len(answer_times),
        answer_p50_s=percentile(answer_times, 50),
        answer_p95_s=percentile(answer_times, 95),
        answer_max_s=max(answer_times, default=None),
        waiting=tuple(sorted(waiting, key=lambda w: (w.asked_at, w.task_id))),
    )


def _unanswered_at(ask: AskRecord, moment: float) -> bool:
    if ask.answered_at is None:
        return bool(ask.current)  # a conversation dropped unanswered waits for nothing
    return ask.answered_at >= moment


def questions_markdown(
    figures: QuestionFigures,
    task_link: Callable[[str], str],
    seconds: Callable[[float | None], str],
) -> list[str]:
    """The report's section on questions; none when no agent asked anything."""
    if not (figures.asked or figures.answered or figures.waiting):
        return []
    times = (figures.answer_p50_s, figures.answer_p95_s, figures.answer_max_s)
    lines = [
        "## Questions to you",
        "",
        "| figure | value |",
        "|---|---|",
        f"| rounds of questions asked | {figures.asked} |",
        f"| rounds answered | {figures.answered} |",
        f"| time to answer p50 / p95 / longest | {' / '.join(map(seconds, times))} |",
        f"| waiting for answers | {len(figures.waiting)} |",
    ]
    for waiting in figures.waiting:
        lines += ["", f"- {task_link(waiting.task_id)} ({waiting.agent}) asks:"]
        lines += [f"  {n}. {q}" for n, q in enumerate(waiting.questions, start=1)]
    return lines
