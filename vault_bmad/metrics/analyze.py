"""The analyzer: a period's attempts in; figures, bottlenecks and recommendations out.

Pure. The period is half-open, `[since, until)`; an attempt belongs to it when it ended
inside it. A workflow run's own bookkeeping attempt (runtime "workflow") is not agent
work and is left out. The figures are computed in `figures`, the bottlenecks and
recommendations in `bottlenecks`; this module puts them together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from vault_bmad.metrics.bottlenecks import (
    DEFAULT_THRESHOLDS,
    Bottleneck,
    Recommendation,
    Thresholds,
    find_bottlenecks,
    recommend,
)
from vault_bmad.metrics.figures import (
    AgentFigures,
    LevelFigures,
    Overall,
    TaskFigures,
    agent_figures,
    cache_levels,
    critical_path,
    overall_figures,
    percentile,
    task_figures,
)
from vault_bmad.metrics.records import WORKFLOW_RUNTIME, Attempt, CacheSample

__all__ = [
    "DEFAULT_THRESHOLDS",
    "WORKFLOW_RUNTIME",
    "AgentFigures",
    "Analysis",
    "Bottleneck",
    "LevelFigures",
    "Overall",
    "Recommendation",
    "TaskFigures",
    "Thresholds",
    "analyze",
    "percentile",
]


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
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> Analysis:
    """Figures, bottlenecks and recommendations for the attempts that ended in the period.

    `capacities` maps each agent id to its capacity (1 for an agent missing from it); an
    agent in it with no attempts counts as idle. `cache_samples` are cumulative counters:
    when they show lookups in the period, the hit rate by level comes from their
    increases, else from the level that served each attempt. `dependencies` (task id ->
    the task ids it depends on) gives the critical path.
    """
    if until < since:
        raise ValueError(f"the period ends ({until}) before it starts ({since})")
    period = [a for a in attempts if since <= a.ended_at < until and a.runtime != WORKFLOW_RUNTIME]
    by_agent: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in period:
        by_agent[attempt.agent].append(attempt)
    agents = tuple(
        agent_figures(name, capacities.get(name, 1), by_agent[name], since, until)
        for name in sorted(set(capacities) | set(by_agent))
    )
    tasks = task_figures(period)
    levels = cache_levels(period, cache_samples, since, until)
    path, path_s = critical_path(tasks, dependencies or {})
    overall = overall_figures(period, tasks, agents, since, until)
    found = find_bottlenecks(
        by_agent=by_agent,
        agents=agents,
        levels=levels,
        overall=overall,
        tasks=tasks,
        path=path,
        path_s=path_s,
        thresholds=thresholds,
    )
    return Analysis(
        overall=overall,
        agents=agents,
        levels=levels,
        tasks=tasks,
        critical_path=path,
        critical_path_s=path_s,
        bottlenecks=found,
        recommendations=recommend(found, agents, thresholds),
    )
