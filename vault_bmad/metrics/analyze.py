"""The analyzer: a period's attempts in; figures, findings and advice out.

Pure. The period is half-open, `[since, until)`; an attempt belongs to it when it ended
inside it. A workflow run's own bookkeeping attempt (runtime "workflow") is not agent
work and is left out. The figures come from a digest of the attempts through
`metrics.series`, the same functions the dashboard reads its digests with; the
bottlenecks and advice come from `bottlenecks`, grouped into findings by `findings`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from vault_bmad.metrics import series
from vault_bmad.metrics.bottlenecks import (
    DEFAULT_THRESHOLDS,
    Bottleneck,
    Recommendation,
    Thresholds,
    find_bottlenecks,
    outages,
    recommend,
)
from vault_bmad.metrics.digest import digest_of
from vault_bmad.metrics.figures import (
    AgentFigures,
    LevelFigures,
    Overall,
    TaskFigures,
    critical_path,
    percentile,
    task_figures,
)
from vault_bmad.metrics.findings import Finding, group_findings
from vault_bmad.metrics.records import WORKFLOW_RUNTIME, AgentChange, Attempt, CacheSample

__all__ = [
    "DEFAULT_THRESHOLDS",
    "WORKFLOW_RUNTIME",
    "AgentFigures",
    "Analysis",
    "Bottleneck",
    "Finding",
    "LevelFigures",
    "Overall",
    "Recommendation",
    "TaskFigures",
    "Thresholds",
    "analyze",
    "percentile",
]


SAMPLE_BUCKET_S = 60.0  # the dashboard's finest bucket: a cache sample per level in each


@dataclass(frozen=True)
class Analysis:
    overall: Overall
    agents: tuple[AgentFigures, ...]  # by agent id
    levels: tuple[LevelFigures, ...]  # L1 before L2
    tasks: tuple[TaskFigures, ...]  # in order of start
    critical_path: tuple[str, ...]  # task ids, dependencies first
    critical_path_s: float
    bottlenecks: tuple[Bottleneck, ...]
    recommendations: tuple[Recommendation, ...]
    findings: tuple[Finding, ...]  # the bottlenecks grouped by kind, with their advice

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return asdict(self)


def analyze(
    attempts: Sequence[Attempt],
    *,
    since: float,
    until: float,
    capacities: Mapping[str, int],
    cache_samples: Sequence[CacheSample] = (),
    dependencies: Mapping[str, Sequence[str]] | None = None,
    agent_changes: Sequence[AgentChange] = (),
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> Analysis:
    """Figures, bottlenecks and advice for the attempts that ended in the period.

    `capacities` maps each agent id to its capacity (1 for an agent missing from it).
    `cache_samples` are cumulative counters: when they show lookups in the period, the
    hit rate by level comes from their growth (from the last sample before the period,
    or from zero), else from the level that served each attempt. `dependencies` (task id
    -> the task ids it depends on) gives the critical path; `agent_changes`, when agents
    were out of service.
    """
    if until < since:
        raise ValueError(f"the period ends ({until}) before it starts ({since})")
    period = [a for a in attempts if since <= a.ended_at < until and a.runtime != WORKFLOW_RUNTIME]
    by_agent: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in period:
        by_agent[attempt.agent].append(attempt)
    digest = digest_of(period, since, until, SAMPLE_BUCKET_S, cache_samples)
    agents = series.agent_figures(digest, capacities)
    overall = series.overall(digest, agents)
    levels = series.cache_levels(digest)
    tasks = task_figures(period)
    path, path_s = critical_path(tasks, dependencies or {})
    found = find_bottlenecks(
        by_agent=by_agent,
        agents=agents,
        levels=levels,
        overall=overall,
        tasks=tasks,
        path=path,
        path_s=path_s,
        out=outages(agent_changes, until),
        thresholds=thresholds,
    )
    advice = recommend(found, agents)
    return Analysis(
        overall=overall,
        agents=agents,
        levels=levels,
        tasks=tasks,
        critical_path=path,
        critical_path_s=path_s,
        bottlenecks=found,
        recommendations=advice,
        findings=group_findings(found, agents),
    )
