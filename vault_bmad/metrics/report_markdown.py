"""An Analysis as the Markdown body of a report note: summary first, findings, then details.

The note opens with a summary and at most one screen of findings (callouts, the same
finding for many agents once), then the figures, each with its one-line definition
(`metrics.figures.DEFINITIONS`), and the details: agents, cache levels, the critical path,
the evidence and a Mermaid Gantt. Every agent and task the report names is a wikilink to
its note, so the report joins the vault's graph; one whose note is unknown is named in
code style instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath

from vault_bmad.metrics.analyze import Analysis, Bottleneck, Finding
from vault_bmad.metrics.bottlenecks import Evidence, Recommendation
from vault_bmad.metrics.figures import DEFINITIONS
from vault_bmad.metrics.findings import ACTION_TITLES
from vault_bmad.metrics.gantt import MAX_BARS, chosen_bars, gantt_block
from vault_bmad.metrics.questions import QuestionFigures, questions_markdown
from vault_bmad.metrics.records import TaskState
from vault_bmad.model.validate import Definitions
from vault_bmad.vault.writer import wikilink

MAX_FINDINGS = 5  # callouts in the findings section: about one screen
MAX_SUBJECTS = 3  # lines per callout before "and N more"
_NOT_AGENTS = frozenset({"small_cache", "queue_wait"})  # kinds whose subject is no agent


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
    lines = [
        f"# Performance report {_span_label(start, end)}",
        "",
        *_summary(analysis),
        *(line for note in notes for line in ("", note)),
        "",
        *_findings(analysis, links),
        "",
        *_figures(analysis),
        "",
        "## Details",
        "",
        *_agents_table(analysis, links),
        "",
        *_section(questions_markdown(questions, links.task, _s) if questions else []),
        *_levels_table(analysis),
        "",
        *_critical_path(analysis, links),
        *_evidence_section(analysis, links),
        *_timeline(analysis, links, start, end, max_bars),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def _section(lines: list[str]) -> list[str]:
    return [*lines, ""] if lines else []


def _summary(analysis: Analysis) -> list[str]:
    o = analysis.overall
    working = sum(a.attempts > 0 for a in analysis.agents)
    p50, p95 = o.latency_s.get("p50"), o.latency_s.get("p95")
    return [
        f"{o.attempts} attempts at {len(analysis.tasks)} tasks by {working} agents, over "
        f"{_s(o.work_s)} of work, with data up to {_local(o.until):%Y-%m-%d %H:%M:%S}: "
        f"{_rate(o.throughput_per_min)} tasks done a minute, latency p50 {_s(p50)} and p95 "
        f"{_s(p95)}, {_pct(o.error_rate, 1)} of attempts not done, {_pct(o.hit_rate)} served "
        f"from the cache, agents busy {_pct(o.utilization)} of their capacity.",
    ]


def _findings(analysis: Analysis, links: NoteLinks) -> list[str]:
    lines = ["## Findings", ""]
    if not analysis.findings:
        return [*lines, "> [!success] Nothing to change", "> Every figure is within bounds."]
    shown = analysis.findings[:MAX_FINDINGS]
    for number, finding in enumerate(shown):
        lines += ["", *_callout(finding, links)] if number else _callout(finding, links)
    if len(analysis.findings) > len(shown):
        rest = len(analysis.findings) - len(shown)
        lines += ["", f"{rest} more finding(s) under Details, Evidence."]
    return lines


def _callout(finding: Finding, links: NoteLinks) -> list[str]:
    subjects = ", ".join(_named(finding.kind, s, links) for s in finding.subjects)
    title = finding.title + ("" if finding.kind == "queue_wait" else f": {subjects}")
    lines = [f"> [!warning] {title}"]
    lines += [f"> - {message}" for message in finding.messages[:MAX_SUBJECTS]]
    if len(finding.messages) > MAX_SUBJECTS:
        lines.append(f"> - and {len(finding.messages) - MAX_SUBJECTS} more.")
    for advice in finding.advice[:MAX_SUBJECTS]:
        action = ACTION_TITLES.get(advice.action, advice.action.replace("_", " "))
        lines.append(f"> **Advice, {action} ({_advised(advice, links)}):** {advice.reason}")
    return lines


def _named(kind: str, subject: str, links: NoteLinks) -> str:
    return f"`{subject}`" if kind in _NOT_AGENTS else links.agent(subject)


def _advised(r: Recommendation, links: NoteLinks) -> str:
    if r.action == "split_task":
        return links.task(r.subject)
    return (
        f"`{r.subject}`"
        if r.action in ("enlarge_cache", "raise_workers")
        else links.agent(r.subject)
    )


def _figures(analysis: Analysis) -> list[str]:
    o = analysis.overall
    latency = " / ".join(_s(o.latency_s.get(p)) for p in ("p50", "p95", "p99"))
    path = f"{_s(analysis.critical_path_s)} ({len(analysis.critical_path)} tasks)"
    rows = [
        ("throughput", f"{_rate(o.throughput_per_min)} tasks/min over {_s(o.work_s)} of work"),
        ("latency", f"p50 / p95 / p99 {latency}, mean {_s(o.latency_mean_s)}"),
        ("queue_wait", f"mean {_s(o.mean_wait_s)}, {_pct(o.wait_share)} of latency"),
        ("error_rate", f"{_pct(o.error_rate, 1)} ({o.failed} of {o.attempts} attempts)"),
        ("hit_rate", _pct(o.hit_rate)),
        ("utilization", _pct(o.utilization, 1)),
        ("critical_path", path if analysis.critical_path else "–"),
    ]
    return [
        "## Figures",
        "",
        "| figure | value | what it is |",
        "|---|---|---|",
        *(f"| {name.replace('_', ' ')} | {value} | {DEFINITIONS[name]} |" for name, value in rows),
    ]


def _agents_table(analysis: Analysis, links: NoteLinks) -> list[str]:
    lines = [
        "### Agents",
        "",
        "| agent | capacity | attempts | done | failed | error rate | utilization | busy "
        "| had work | p50 | p95 | mean | queue wait | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in analysis.agents:
        flags = sorted({b.kind for b in analysis.bottlenecks if b.subject == a.agent})
        lines.append(
            f"| {_cell(links.agent(a.agent))} | {a.capacity} | {a.attempts} | {a.done} "
            f"| {a.failed} | {_pct(a.error_rate, 1)} | {_pct(a.utilization, 1)} "
            f"| {_s(a.busy_s)} | {_s(a.work_s)} | {_s(a.latency_s.get('p50'))} "
            f"| {_s(a.latency_s.get('p95'))} | {_s(a.latency_mean_s)} | {_pct(a.wait_share)} "
            f"| {', '.join(k.replace('_', ' ') for k in flags) or 'ok'} |"
        )
    return lines


def _levels_table(analysis: Analysis) -> list[str]:
    lines = ["### Cache by level", ""]
    if not analysis.levels:
        return [*lines, "No cache level served an attempt in this period."]
    lines += [
        "Hit rate per level: its hits over the lookups that reached it. Ghost hits: misses on "
        "results the level had dropped for room.",
        "",
        "| level | lookups | hits | misses | hit rate | ghost hits | from |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {_cell(lv.level)} | {lv.hits + lv.misses} | {lv.hits} | {lv.misses} "
        f"| {_pct(lv.hit_rate)} | {lv.ghost_hits} | {lv.source} |"
        for lv in analysis.levels
    ]
    return lines


def _evidence_section(analysis: Analysis, links: NoteLinks) -> list[str]:
    if not analysis.bottlenecks:
        return []
    agents = {a.agent for a in analysis.agents}
    tasks = {t.task_id for t in analysis.tasks}
    lines = ["### Evidence", ""]
    for b in analysis.bottlenecks:
        shown = "; ".join(f"{k}: {v}" for k, v in _evidence(b, agents, tasks, links))
        lines.append(f"- {b.kind.replace('_', ' ')}, {_named(b.kind, b.subject, links)}: {shown}")
    return [*lines, ""]


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
        if key in ("threshold", "gain") or any(
            word in key for word in ("rate", "share", "utilization")
        ):
            return _pct(value, 1)
        return str(value)

    return [
        (key.removesuffix("_s").replace("_", " "), show(key, value))
        for key, value in b.evidence.items()
    ]


def _critical_path(analysis: Analysis, links: NoteLinks) -> list[str]:
    if not analysis.critical_path:
        return []
    chain = " → ".join(links.task(task_id) for task_id in analysis.critical_path)
    return ["### Critical path", "", f"{chain} ({_s(analysis.critical_path_s)})", ""]


def _timeline(
    analysis: Analysis, links: NoteLinks, start: float, end: float, max_bars: int
) -> list[str]:
    lines = ["### Timeline", ""]
    bars = chosen_bars(analysis.tasks, max_bars)
    if not bars:
        return [*lines, "No task ran in this period."]
    total = len(analysis.tasks)
    shown = f"all {total}" if len(bars) == total else f"the {len(bars)} longest of {total}"
    lines += [f"The chart shows {shown} tasks by agent, each as its latest attempt.", ""]
    lines += gantt_block(
        bars,
        title=f"Tasks {_span_label(start, end)}",
        bar_name=links.task_title,
        section_name=links.agent_name,
    )
    clock = "%H:%M:%S" if end - start < 86_400 else "%m-%d %H:%M:%S"
    lines += [
        "",
        "| task | agent | status | attempts | last run started | ran |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {_cell(links.task(t.task_id))} | {_cell(links.agent(t.agent))} | {t.status} "
        f"| {t.attempts} | {_local(t.last_started):{clock}} | {_s(t.last_run_s)} |"
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


def _rate(per_min: float | None) -> str:
    return "–" if per_min is None else f"{per_min:.2f}"


def _pct(share: float | None, decimals: int = 0) -> str:
    return "–" if share is None else f"{share * 100:.{decimals}f}%"


def _cell(text: str) -> str:
    """Text safe in a table cell: a wikilink's alias pipe escaped, on one line."""
    return text.replace("|", "\\|").replace("\n", " ")
