"""An Analysis as the Markdown body of a report note: tables, callouts, a Gantt, wikilinks.

Every agent and task the report names is a wikilink to its note, so the report joins the
vault's graph; one whose note is unknown is named in code style instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath

from vault_bmad.metrics.analyze import Analysis, Bottleneck, Recommendation
from vault_bmad.metrics.bottlenecks import Evidence
from vault_bmad.metrics.gantt import MAX_BARS, chosen_bars, gantt_block
from vault_bmad.metrics.questions import QuestionFigures, questions_markdown
from vault_bmad.metrics.records import TaskState
from vault_bmad.model.definitions import Definitions
from vault_bmad.vault.writer import wikilink

_BOTTLENECK_TITLES = {
    "slow_agent": "Slow agent: {}",
    "low_hit_rate": "Low hit rate: cache level {}",
    "saturated_agent": "Saturated agent: {}",
    "queue_wait": "Long queue wait",
    "rising_errors": "Rising error rate: {}",
    "critical_path": "Critical path dominated by {}",
}
_ACTION_TITLES = {
    "raise_capacity": "Raise the capacity of {}",
    "add_agent": "Add an agent with the expertise of {}",
    "change_strategy": "Change the balancing strategy, for {}",
    "enlarge_cache": "Enlarge cache level {}",
    "split_task": "Split the task {}",
}


@dataclass(frozen=True)
class NoteLinks:
    """What the report needs to name agents and tasks: their notes, names and expertise."""

    agent_paths: Mapping[str, str] = field(default_factory=dict)
    agent_names: Mapping[str, str] = field(default_factory=dict)
    expertise: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    task_paths: Mapping[str, str] = field(default_factory=dict)
    task_titles: Mapping[str, str] = field(default_factory=dict)
    task_steps: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, definitions: Definitions, states: Iterable[TaskState] = ()) -> NoteLinks:
        """From the vault's definitions; stored task states name tasks no longer defined."""
        stored = {state.task_id: state.path for state in states if state.path}
        tasks = definitions.tasks
        agents = definitions.agents.values()
        return cls(
            agent_paths={agent.id: agent.path for agent in agents},
            agent_names={agent.id: agent.name for agent in agents},
            expertise={agent.id: agent.expertise for agent in agents},
            task_paths={**stored, **{task.id: task.path for task in tasks.values()}},
            task_titles={task.id: task.title for task in tasks.values()},
            task_steps={task.id: task.step for task in tasks.values() if task.step},
        )

    def agent(self, agent_id: str) -> str:
        path = self.agent_paths.get(agent_id)
        return wikilink(path) if path else f"`{agent_id}`"

    def task(self, task_id: str) -> str:
        path = self.task_paths.get(task_id)
        if not path:
            return f"`{task_id}`"
        step = self.task_steps.get(task_id)
        return wikilink(path) + (f" step `{step}`" if step else "")

    def agent_name(self, agent_id: str) -> str:
        return self.agent_names.get(agent_id) or agent_id

    def task_title(self, task_id: str) -> str:
        path = self.task_paths.get(task_id)
        return self.task_titles.get(task_id) or (PurePosixPath(path).stem if path else task_id)


def report_markdown(
    analysis: Analysis,
    start: float,
    end: float,
    links: NoteLinks,
    *,
    notes: Sequence[str] = (),
    max_bars: int = MAX_BARS,
    questions: QuestionFigures | None = None,
) -> str:
    """The report's body for the period `[start, end)`."""
    o = analysis.overall
    working = sum(a.attempts > 0 for a in analysis.agents)
    lines = [
        f"# Performance report {_span_label(start, end)}",
        "",
        f"{o.attempts} attempts at {o.tasks} tasks by {working} agents, "
        f"with data up to {_local(o.until):%Y-%m-%d %H:%M:%S}.",
        *(line for note in notes for line in ("", note)),
        "",
        *_overall_table(analysis),
        "",
        *_agents_table(analysis, links),
        "",
        *_section(questions_markdown(questions, links.task, _s) if questions else []),
        *_levels_table(analysis),
        "",
        *_bottlenecks(analysis, links),
        "",
        *_recommendations(analysis, links),
        "",
        *_critical_path(analysis, links),
        *_timeline(analysis, links, start, end, max_bars),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def _section(lines: list[str]) -> list[str]:
    return [*lines, ""] if lines else []


def _overall_table(analysis: Analysis) -> list[str]:
    o = analysis.overall
    p50, p95, p99 = o.latency_p50_s, o.latency_p95_s, o.latency_p99_s
    return [
        "## Overall",
        "",
        "| figure | value |",
        "|---|---|",
        f"| latency p50 / p95 / p99 | {_s(p50)} / {_s(p95)} / {_s(p99)} |",
        f"| latency mean | {_s(o.latency_mean_s)} |",
        f"| queue wait share of latency | {_pct(o.wait_share)} (mean wait {_s(o.mean_wait_s)}) |",
        f"| throughput | {o.throughput_per_min:.2f} tasks/min |",
        f"| error rate | {_pct(o.error_rate, 1)} ({o.failed} of {o.attempts} attempts) |",
        f"| cache hit rate | {_pct(o.hit_rate)} |",
        f"| utilization | {_pct(o.utilization, 1)} |",
    ]


def _agents_table(analysis: Analysis, links: NoteLinks) -> list[str]:
    lines = [
        "## Agents",
        "",
        "| agent | capacity | attempts | done | failed | error rate | utilization | busy "
        "| p50 | p95 | mean | queue wait | health |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in analysis.agents:
        flags = sorted({b.kind for b in analysis.bottlenecks if b.subject == a.agent})
        lines.append(
            f"| {_cell(links.agent(a.agent))} | {a.capacity} | {a.attempts} | {a.done} "
            f"| {a.failed} | {_pct(a.error_rate, 1)} | {_pct(a.utilization, 1)} | {_s(a.busy_s)} "
            f"| {_s(a.latency_p50_s)} | {_s(a.latency_p95_s)} | {_s(a.latency_mean_s)} "
            f"| {_pct(a.wait_share)} | {', '.join(k.replace('_', ' ') for k in flags) or 'ok'} |"
        )
    return lines


def _levels_table(analysis: Analysis) -> list[str]:
    lines = ["## Cache by level", ""]
    if not analysis.levels:
        return [*lines, "No cache level served an attempt in this period."]
    lines += ["| level | hits | misses | hit rate | from |", "|---|---|---|---|---|"]
    lines += [
        f"| {_cell(lv.level)} | {lv.hits} | {lv.misses} | {_pct(lv.hit_rate)} | {lv.source} |"
        for lv in analysis.levels
    ]
    return lines


def _bottlenecks(analysis: Analysis, links: NoteLinks) -> list[str]:
    lines = ["## Bottlenecks", ""]
    if not analysis.bottlenecks:
        return [*lines, "> [!success] No bottlenecks found", "> Every figure is within bounds."]
    agents = {a.agent for a in analysis.agents}
    tasks = {t.task_id for t in analysis.tasks}
    for number, b in enumerate(analysis.bottlenecks):
        subject = (
            links.agent(b.subject) if b.kind not in ("low_hit_rate", "queue_wait") else b.subject
        )
        lines += [
            *([""] if number else []),
            f"> [!warning] {_BOTTLENECK_TITLES.get(b.kind, b.kind).format(subject)}",
            f"> {b.message}",
            *(f"> - {key}: {value}" for key, value in _evidence(b, agents, tasks, links)),
        ]
    return lines


def _evidence(
    b: Bottleneck, agents: set[str], tasks: set[str], links: NoteLinks
) -> list[tuple[str, str]]:
    """The evidence as label and text; a value naming an agent or task is its link."""

    def show(key: str, value: Evidence) -> str:
        if isinstance(value, tuple):
            joint = " → " if b.kind == "critical_path" else ", "
            return joint.join(show(key, v) for v in value)
        if key == "last_error" and isinstance(value, str):
            flat = " ".join(value.replace("`", "'").split())
            return f"`{flat[:200]}`" if flat else "–"
        if isinstance(value, str):
            if value in agents:
                return links.agent(value)
            return links.task(value) if value in tasks else value or "–"
        if key.endswith("_s"):
            return _s(value)
        if key == "threshold" or any(word in key for word in ("rate", "share", "utilization")):
            return _pct(value, 1)
        return str(value)

    return [
        (key.removesuffix("_s").replace("_", " "), show(key, value))
        for key, value in b.evidence.items()
    ]


def _recommendations(analysis: Analysis, links: NoteLinks) -> list[str]:
    lines = ["## Recommendations", ""]
    if not analysis.recommendations:
        return [*lines, "Nothing to change."]
    for number, r in enumerate(analysis.recommendations):
        lines += [
            *([""] if number else []),
            f"> [!tip] {_ACTION_TITLES.get(r.action, r.action).format(_subject(r, links))}",
            f"> {r.reason}",
        ]
        if r.action == "add_agent" and links.expertise.get(r.subject):
            lines.append(f"> Expertise: {', '.join(links.expertise[r.subject])}.")
    return lines


def _subject(r: Recommendation, links: NoteLinks) -> str:
    if r.action == "split_task":
        return links.task(r.subject)
    return r.subject if r.action == "enlarge_cache" else links.agent(r.subject)


def _critical_path(analysis: Analysis, links: NoteLinks) -> list[str]:
    if not analysis.critical_path:
        return []
    chain = " → ".join(links.task(task_id) for task_id in analysis.critical_path)
    return ["## Critical path", "", f"{chain} ({_s(analysis.critical_path_s)})", ""]


def _timeline(
    analysis: Analysis, links: NoteLinks, start: float, end: float, max_bars: int
) -> list[str]:
    lines = ["## Timeline", ""]
    bars = chosen_bars(analysis.tasks, max_bars)
    if not bars:
        return [*lines, "No task ran in this period."]
    total = len(analysis.tasks)
    shown = f"all {total}" if len(bars) == total else f"the {len(bars)} longest of {total}"
    lines += [f"The chart shows {shown} tasks, by agent.", ""]
    lines += gantt_block(
        bars,
        title=f"Tasks {_span_label(start, end)}",
        bar_name=links.task_title,
        section_name=links.agent_name,
    )
    clock = "%H:%M:%S" if end - start < 86_400 else "%m-%d %H:%M:%S"
    lines += [
        "",
        "| task | agent | status | attempts | started | span |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {_cell(links.task(t.task_id))} | {_cell(links.agent(t.agent))} | {t.status} "
        f"| {t.attempts} | {_local(t.started):{clock}} | {_s(t.span_s)} |"
        for t in bars
    ]
    return lines


def _local(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch)


def _span_label(start: float, end: float) -> str:
    first, last = _local(start), _local(end)
    if first.date() == last.date():
        return f"{first:%Y-%m-%d %H:%M}–{last:%H:%M}"
    return f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M}"


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _pct(share: float | None, decimals: int = 0) -> str:
    return "–" if share is None else f"{share * 100:.{decimals}f}%"


def _cell(text: str) -> str:
    """Text safe in a table cell: a wikilink's alias pipe escaped, on one line."""
    return text.replace("|", "\\|").replace("\n", " ")
