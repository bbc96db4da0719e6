"""The performance report note: a period's analysis as Markdown under `Reports/`.

A note per period, named by it ("Reports/Report 2026-11-25 0400-0500.md"), so writing the
same period again rewrites that note instead of piling up copies (a note the user edited
is kept, and NoteWriter puts the new one beside it). `vault-bmad report` covers a span up
to now, widened to whole minutes (`span_period`); `serve` covers fixed intervals aligned
to local midnight (`interval_period`): each interval once it has ended, and the current
one at shutdown, which the full report for that interval later replaces.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from vault_bmad.metrics.analyze import DEFAULT_THRESHOLDS, Analysis, Thresholds, analyze
from vault_bmad.metrics.queries import cache_samples_from, earliest_attempt
from vault_bmad.metrics.questions import QuestionFigures, question_figures
from vault_bmad.metrics.records import Attempt, TaskState
from vault_bmad.metrics.report_markdown import NoteLinks, report_markdown
from vault_bmad.metrics.store import Store
from vault_bmad.metrics.usage import Usage, cost_text, usage
from vault_bmad.model.validate import Definitions
from vault_bmad.vault.writer import NoteWriter, iso_time

__all__ = [
    "MAX_ATTEMPTS",
    "REPORTS_FOLDER",
    "NoteLinks",
    "Period",
    "ReportSchedule",
    "WrittenReport",
    "bounded_span",
    "interval_period",
    "parse_span",
    "report_from_store",
    "report_span",
    "span_period",
    "write_report",
]

REPORTS_FOLDER = "Reports"
REPORT_TAGS = ("vault-bmad/report", "vault-bmad/performance")
MAX_ATTEMPTS = 1_000_000  # analyzed per report at most: the latest of the period
_DAY_S = 86_400.0
UNCUT_SPAN_S = 7 * _DAY_S  # spans up to this are taken as asked; longer ones meet history
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": _DAY_S, "w": 7 * _DAY_S}
_LONGEST_SPAN_TEXT = 24  # "99999999999999999999d" is longer than any history
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


@dataclass(frozen=True)
class Period:
    """`[start, end)` in epoch seconds."""

    start: float
    end: float

    @property
    def note_path(self) -> str:
        """ "Reports/Report 2026-11-25 0400-0500.md", in local time, seconds only if needed."""
        start, end = datetime.fromtimestamp(self.start), datetime.fromtimestamp(self.end)
        clock = "%H%M%S" if start.second or end.second else "%H%M"
        midnight_after = start.replace(hour=0, minute=0, second=0, microsecond=0)
        midnight_after += timedelta(days=1)
        if end.date() == start.date():
            until = f"-{end:{clock}}"
        elif end == midnight_after:
            until = "-24" + f"{end:{clock}}"[2:]
        else:
            until = f" - {end:%Y-%m-%d} {end:{clock}}"
        return f"{REPORTS_FOLDER}/Report {start:%Y-%m-%d} {start:{clock}}{until}.md"


def parse_span(text: str) -> float | None:
    """Seconds in "90m", "24h", "7d", "2w" or "30s"; None for "all"."""
    cleaned = text.strip().lower()
    if cleaned == "all":
        return None
    found = _SPAN.fullmatch(cleaned) if len(cleaned) <= _LONGEST_SPAN_TEXT else None
    if found is None or float(found[1]) <= 0:
        shown = text if len(text) <= _LONGEST_SPAN_TEXT else text[:_LONGEST_SPAN_TEXT] + "…"
        raise ValueError(f"{shown!r} is not a span of time such as 90m, 24h, 7d or all")
    return float(found[1]) * _UNIT_S[found[2]]


def bounded_span(span_s: float, now: float, earliest: float | None) -> float:
    """`span_s` cut to the recorded history: a span reaching before `earliest` (the first
    record) starts there instead, but no span up to UNCUT_SPAN_S is cut. Whatever number
    is typed ("99999999999d"), the period, and the work on it, stays within what the
    store holds."""
    history = now - earliest if earliest is not None else 0.0
    return min(span_s, max(history, UNCUT_SPAN_S))


def span_period(now: float, span_s: float | None, earliest: float | None = None) -> Period:
    """The last `span_s` seconds up to `now` (None: since `earliest`), in whole minutes;
    a span is cut to the history since `earliest` (`bounded_span`)."""
    if span_s is not None:
        start = now - bounded_span(span_s, now, earliest)
    else:
        start = earliest if earliest is not None else now
    end = math.ceil(now / 60) * 60.0
    return Period(min(math.floor(start / 60) * 60.0, end), end)


def interval_period(moment: float, interval_s: float) -> Period:
    """The interval holding `moment`, counted from local midnight (from the epoch if a day or
    more); the day's last interval ends at midnight."""
    if interval_s <= 0:
        raise ValueError(f"a report interval must be positive, not {interval_s}")
    if interval_s >= _DAY_S:
        start = math.floor(moment / interval_s) * interval_s
        return Period(start, start + interval_s)
    midnight = datetime.fromtimestamp(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    day_start, next_day = midnight.timestamp(), (midnight + timedelta(days=1)).timestamp()
    start = day_start + math.floor((moment - day_start) / interval_s) * interval_s
    return Period(start, min(start + interval_s, next_day))


class ReportSchedule:
    """When `serve` writes reports: each interval once it has ended, the current at shutdown.

    Call `due()` from the thread that writes the vault (the engine loop) and pass what it
    returns to `report_from_store` with the orchestrator's NoteWriter.
    """

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.time) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._current = interval_period(clock(), interval_s)

    def due(self) -> Period | None:
        """The interval that has ended since the last call, once; None until one has."""
        now = self._clock()
        if now < self._current.end:
            return None
        ended, self._current = self._current, interval_period(now, self.interval_s)
        return ended

    def at_shutdown(self) -> Period:
        """The interval running now; its full report later rewrites the same note."""
        return interval_period(self._clock(), self.interval_s)


@dataclass(frozen=True)
class WrittenReport:
    path: str  # vault-relative
    period: Period
    analysis: Analysis
    questions: QuestionFigures


def write_report(
    writer: NoteWriter,
    analysis: Analysis,
    period: Period,
    links: NoteLinks,
    *,
    notes: Sequence[str] = (),
    spent: Mapping[str, Usage] | None = None,
    questions: QuestionFigures | None = None,
) -> str:
    """Write (or rewrite) the period's report note; return its vault-relative path.
    `spent` holds each agent's tokens and cost in the period (`metrics.usage`)."""
    frontmatter = {
        "type": "report",
        "tags": list(REPORT_TAGS),
        "period_start": iso_time(period.start),
        "period_end": iso_time(period.end),
        "data_until": iso_time(analysis.overall.until),
        "bottlenecks": len(analysis.bottlenecks),
        "findings": len(analysis.findings),
    }
    body = report_markdown(
        analysis, period.start, period.end, links, notes=notes, questions=questions
    )
    if spent:
        body += "\n" + "\n".join(usage_section(spent, links)) + "\n"
    return writer.write_output(period.note_path, body, None, frontmatter)


def usage_section(by_agent: Mapping[str, Usage], links: NoteLinks) -> list[str]:
    """Tokens and cost by agent: spent by its calls, and saved by the cache."""
    lines = [
        "## Tokens and cost",
        "",
        "| agent | prompt tokens | completion tokens | cost | calls | saved tokens | saved cost |",
        "|---|---|---|---|---|---|---|",
    ]
    for agent, used in sorted(by_agent.items()):
        lines.append(
            f"| {links.agent(agent)} | {used.tokens_in} | {used.tokens_out} "
            f"| {cost_text(used.cost)} | {used.calls} | {used.saved_tokens} "
            f"| {cost_text(used.saved_cost)} |"
        )
    return lines


def report_from_store(
    store: Store,
    definitions: Definitions,
    writer: NoteWriter,
    period: Period,
    *,
    now: float,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> WrittenReport:
    """Analyze the period's records in `store` up to `now` and write its report note."""
    attempts = store.attempts(since=period.start, limit=MAX_ATTEMPTS)
    return _report(store, definitions, writer, period, attempts, now, thresholds)


def report_span(
    store: Store,
    definitions: Definitions,
    writer: NoteWriter,
    span_s: float | None,
    *,
    now: float,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> WrittenReport:
    """The report on the last `span_s` seconds up to `now` (None: all `store` recorded)."""
    if span_s is not None:
        period = span_period(now, span_s, earliest_attempt(store))
        return report_from_store(store, definitions, writer, period, now=now, thresholds=thresholds)
    attempts = store.attempts(limit=MAX_ATTEMPTS)
    earliest = min((a.queued_at for a in attempts), default=None)
    period = span_period(now, None, earliest)
    return _report(store, definitions, writer, period, attempts, now, thresholds)


def _report(
    store: Store,
    definitions: Definitions,
    writer: NoteWriter,
    period: Period,
    attempts: list[Attempt],
    now: float,
    thresholds: Thresholds,
) -> WrittenReport:
    until = max(period.start, min(period.end, now))
    analysis = analyze(
        attempts,
        since=period.start,
        until=until,
        capacities={agent.id: agent.capacity for agent in definitions.agents.values()},
        cache_samples=cache_samples_from(store, period.start),
        dependencies={task.id: task.depends_on for task in definitions.tasks.values()},
        agent_changes=store.agent_changes(),
        thresholds=thresholds,
    )
    notes = []
    if len(attempts) >= MAX_ATTEMPTS:
        notes.append(f"Only the latest {MAX_ATTEMPTS:,} attempts of the period were analyzed.")
    questions = question_figures(store.asks(since=period.start), period.start, until)
    states: list[TaskState] = store.tasks()
    links = NoteLinks.of(definitions, states)
    spent = usage(store, "agent", period.start, until)
    path = write_report(
        writer, analysis, period, links, notes=notes, spent=spent, questions=questions
    )
    return WrittenReport(path, period, analysis, questions)
