"""The report notes the commands leave under `Reports/`: the short note of each
`vault-bmad run`, and the period's performance report of `vault-bmad report`."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from vault_bmad.config import STATE_DB, Settings
from vault_bmad.engine.writeback import TaskNotes
from vault_bmad.errors import VaultBmadError
from vault_bmad.metrics.analyze import DEFAULT_THRESHOLDS, Thresholds
from vault_bmad.metrics.outcomes import RunSummary, TaskOutcome
from vault_bmad.metrics.report import REPORTS_FOLDER, WrittenReport, report_span
from vault_bmad.metrics.store import Store
from vault_bmad.metrics.usage import NONE, Usage, cost_text
from vault_bmad.model.status import NEEDS_INPUT, STOPS
from vault_bmad.model.validate import Definitions, build_definitions
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.writer import NoteWriter, wikilink


def run_report_markdown(
    summary: RunSummary,
    definitions: Definitions,
    invalid: list[str] | tuple[str, ...],
    usage: Mapping[str, Usage] | None = None,
    spent: Usage = NONE,
) -> str:
    """The report's body: counts, timings, tokens and cost, warnings, and a row per task,
    linked into the graph. `usage` holds each task's tokens and cost, `spent` the run's
    (both from `metrics.usage`)."""
    usage = usage or {}
    outcomes = sorted(summary.outcomes.values(), key=lambda o: o.task_id)
    seconds = [o.seconds for o in outcomes if o.status == "done"]
    elapsed = max(summary.ended - summary.started, 0.0)
    lines = [
        f"# Run of {_local(summary.started):%Y-%m-%d %H:%M:%S}",
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {status} | {summary.count(status)} |" for status in STOPS),
        f"| invalid notes | {len(invalid)} |",
        f"| wall time | {elapsed:.2f} s |",
    ]
    if summary.stopped:
        lines.append(f"| stopped, back to todo | {len(summary.stopped)} |")
    if seconds:
        lines.append(f"| median task time | {statistics.median(seconds):.3f} s |")
    lines += [
        f"| tokens (prompt + completion) | {spent.tokens_in} + {spent.tokens_out} |",
        f"| cost | {cost_text(spent.cost)} |",
        f"| saved by the cache | {spent.saved_tokens} tokens, cost {cost_text(spent.saved_cost)} |",
    ]
    lines += _warnings(summary, outcomes)
    lines += ["", "## Tasks", "", "| task | status | agent | attempts | cache | tokens | result |"]
    lines.append("|---|---|---|---|---|---|---|")
    lines += [_row(outcome, definitions, usage.get(outcome.task_id)) for outcome in outcomes]
    waiting = [o for o in outcomes if o.status == NEEDS_INPUT]
    if waiting:
        lines += ["", "## Waiting for your answers", ""]
        lines.append("Write `answers:` in each note, one per question in order, and run again.")
        for outcome in waiting:
            lines += ["", f"- {wikilink(outcome.path)} ({outcome.task_id}) asks:"]
            lines += [f"  {n}. {q}" for n, q in enumerate(outcome.questions, start=1)]
    if invalid:
        lines += ["", "## Invalid notes", "", *(f"- {wikilink(path)}" for path in invalid)]
    return "\n".join(lines) + "\n"


def _warnings(summary: RunSummary, outcomes: list[TaskOutcome]) -> list[str]:
    """Callouts for answers cut off at their length limit and for a run stopped part way."""
    lines = []
    cut = [o for o in outcomes if o.truncated]
    if cut:
        lines += [
            "",
            f"> [!warning] {len(cut)} answer{'s were' if len(cut) > 1 else ' was'} cut off at "
            "the length limit (`truncated: true`); raise `max_tokens` and run again:",
            *(f"> - {wikilink(o.path)}" for o in cut),
        ]
    if summary.stopped:
        lines += [
            "",
            f"> [!note] The run was stopped; {len(summary.stopped)} tasks went back to todo:",
            *(f"> - `{task_id}`" for task_id in summary.stopped),
        ]
    return lines


def _row(outcome: TaskOutcome, definitions: Definitions, spent: Usage | None) -> str:
    agent = definitions.agents.get(outcome.agent or "")
    agent_cell = wikilink(agent.path) if agent else (outcome.agent or "")
    result = wikilink(outcome.output) if outcome.output else _cell(outcome.error or "")
    if outcome.status == NEEDS_INPUT:
        result = _cell(f"asks {len(outcome.questions)} question(s)")
    task = definitions.tasks.get(outcome.task_id)
    task_cell = wikilink(outcome.path) + (f" step `{task.step}`" if task and task.step else "")
    tokens = f"{spent.tokens_in} + {spent.tokens_out}" if spent and spent.tokens else ""
    cut = " (truncated)" if outcome.truncated else ""
    return (
        f"| {_cell(task_cell)} | {outcome.status}{cut} | {_cell(agent_cell)} "
        f"| {outcome.attempts} | {outcome.cache or ''} | {tokens} | {result} |"
    )


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, on one line."""
    return text.replace("|", "\\|").replace("\n", " ")


def _local(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch).astimezone()


def write_run_report(
    writer: TaskNotes,
    summary: RunSummary,
    definitions: Definitions,
    invalid: list[str] | tuple[str, ...],
    usage: Mapping[str, Usage] | None = None,
    spent: Usage = NONE,
) -> str:
    """Write the report note and return its vault-relative path."""
    started = _local(summary.started)
    path = f"{REPORTS_FOLDER}/Run {started:%Y-%m-%d %H%M%S}.md"
    frontmatter = {
        "type": "report",
        "tags": ["vault-bmad/report", "vault-bmad/run"],
        "period_start": started.isoformat(timespec="seconds"),
        "period_end": _local(summary.ended).isoformat(timespec="seconds"),
    }
    body = run_report_markdown(summary, definitions, invalid, usage, spent)
    return writer.write_output(path, body, None, frontmatter)


def write_vault_report(
    vault: Path,
    settings: Settings,
    span_s: float | None,
    *,
    clock: Callable[[], float] = time.time,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> WrittenReport:
    """`vault-bmad report`: the report on the last `span_s` seconds (None: all recorded)."""
    database = vault.resolve() / settings.state_dir / STATE_DB
    if not database.is_file():
        raise VaultBmadError(
            f"no metrics yet: {database} is missing; `vault-bmad run` or `serve` records them"
        )
    definitions = build_definitions(VaultIndex.load(vault), None, settings.output_folder)
    writer = NoteWriter(vault.resolve())
    with Store(database, clock=clock) as store:
        return report_span(store, definitions, writer, span_s, now=clock(), thresholds=thresholds)
