"""Findings: a period's bottlenecks grouped by kind, each group with its advice, and the
words that name them, which the report and the dashboard both show.

The same finding for many agents is one finding naming them all, so a report of a busy
vault stays short. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vault_bmad.metrics.bottlenecks import Bottleneck, Recommendation, advise
from vault_bmad.metrics.figures import AgentFigures

KIND_TITLES: dict[str, str] = {
    "agent_out": "Tasks waited while their agent was out",
    "saturated_agent": "Agents at capacity while their tasks queued",
    "queue_wait": "Long queue wait",
    "slow_agent": "Slow agents",
    "small_cache": "Cache levels too small for the work",
    "rising_errors": "Rising error rates",
    "critical_path": "One agent holds up the critical path",
}
ACTION_TITLES: dict[str, str] = {
    "check_agent": "check the agent",
    "raise_capacity": "raise its capacity",
    "raise_workers": "raise the worker pool",
    "split_task": "split the task",
    "enlarge_cache": "enlarge the level",
    "change_strategy": "change the balancing strategy",
}


@dataclass(frozen=True)
class Finding:
    kind: str
    title: str
    subjects: tuple[str, ...]  # agent ids, cache levels, or "queue"
    messages: tuple[str, ...]  # what was found, one per subject
    advice: tuple[Recommendation, ...]


def group_findings(
    bottlenecks: Sequence[Bottleneck], agents: Sequence[AgentFigures]
) -> tuple[Finding, ...]:
    """One finding per kind, in the order the kinds were found, with the advice of each."""
    figures = {agent.agent: agent for agent in agents}
    kinds: dict[str, list[Bottleneck]] = {}
    for bottleneck in bottlenecks:
        kinds.setdefault(bottleneck.kind, []).append(bottleneck)
    found = []
    for kind, group in kinds.items():
        advice: dict[tuple[str, str], Recommendation] = {}
        for bottleneck in group:
            for item in advise(bottleneck, figures):
                advice.setdefault((item.action, item.subject), item)
        found.append(
            Finding(
                kind,
                KIND_TITLES.get(kind, kind.replace("_", " ")),
                tuple(b.subject for b in group),
                tuple(b.message for b in group),
                tuple(advice.values()),
            )
        )
    return tuple(found)
