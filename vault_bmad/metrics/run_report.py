"""The short report note a `vault-bmad run` leaves under `Reports/`."""

from __future__ import annotations

import statistics
from datetime import datetime

from vault_bmad.engine.outcomes import RunSummary, TaskOutcome
from vault_bmad.engine.writeback import TaskNotes
from vault_bmad.model.definitions import Definitions
from vault_bmad.model.status import OUTCOMES
from vault_bmad.vault.writer import wikilink

REPORTS_FOLDER = "Reports"


def run_report_markdown(
    summary: RunSummary, definitions: Definitions, invalid: list[str] | tuple[str, ...]
) -> str:
    """The report's body: counts, timings, and a row per task, linked into the graph."""
    outcomes = sorted(summary.outcomes.values(), key=lambda o: o.task_id)
    seconds = [o.seconds for o in outcomes if o.status == "done"]
    elapsed = max(summary.ended - summary.started, 0.0)
    lines = [
        f"# Run of {_local(summary.started):%Y-%m-%d %H:%M:%S}",
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {status} | {summary.count(status)} |" for status in OUTCOMES),
        f"| invalid notes | {len(invalid)} |",
        f"| wall time | {elapsed:.2f} s |",
    ]
    if seconds:
        lines.append(f"| median task time | {statistics.median(seconds):.3f} s |")
    lines += ["", "## Tasks", "", "| task | status | agent | attempts | cache | result |"]
    lines.append("|---|---|---|---|---|---|")
    lines += [_row(outcome, definitions) for outcome in outcomes]
    if invalid:
        lines += ["", "## Invalid notes", "", *(f"- {wikilink(path)}" for path in invalid)]
    return "\n".join(lines) + "\n"


def _row(outcome: TaskOutcome, definitions: Definitions) -> str:
    agent = definitions.agents.get(outcome.agent or "")
    agent_cell = wikilink(agent.path) if agent else (outcome.agent or "")
    result = wikilink(outcome.output) if outcome.output else _cell(outcome.error or "")
    task = definitions.tasks.get(outcome.task_id)
    task_cell = wikilink(outcome.path) + (f" step `{task.step}`" if task and task.step else "")
    return (
        f"| {_cell(task_cell)} | {outcome.status} | {_cell(agent_cell)} | {outcome.attempts} "
        f"| {outcome.cache or ''} | {result} |"
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
    body = run_report_markdown(summary, definitions, invalid)
    return writer.write_output(path, body, None, frontmatter)
