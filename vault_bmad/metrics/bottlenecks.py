"""Bottlenecks found in a period's figures, each with its evidence, and what to do about them.

Pure. Every threshold sits in one `Thresholds` value. The kinds, checked in this order:
`slow_agent`, `low_hit_rate`, `saturated_agent`, `queue_wait`, `rising_errors` and
`critical_path`. The actions: `raise_capacity`, `add_agent`, `change_strategy`,
`enlarge_cache` and `split_task`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from vault_bmad.metrics.figures import (
    AgentFigures,
    LevelFigures,
    Overall,
    TaskFigures,
    latency,
    wait,
)
from vault_bmad.metrics.records import Attempt

Evidence = float | int | str | tuple[str, ...]


@dataclass(frozen=True)
class Thresholds:
    """Where a figure becomes a bottleneck."""

    slow_p95_s: float = 5.0  # an agent's p95 latency above this is slow
    min_hit_rate: float = 0.8  # a cache level hitting less often is too small
    min_lookups: int = 20  # lookups a level needs before its hit rate counts
    saturated: float = 0.9  # utilization at or above this is saturated...
    idle: float = 0.2  # ...while another agent at or below this idles
    target_utilization: float = 0.7  # what a suggested capacity aims for
    queue_wait_share: float = 0.5  # queue wait's share of latency that is too long...
    min_queue_wait_s: float = 1.0  # ...once the mean wait is at least this long
    error_rate_rise: float = 0.1  # second half's error rate minus the first half's
    min_trend_attempts: int = 5  # attempts each half of the period needs for a trend
    critical_path_share: float = 0.6  # one agent's share of the critical path


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Bottleneck:
    kind: str  # see the module docstring
    subject: str  # an agent id, a cache level, or "queue"
    message: str
    evidence: dict[str, Evidence] = field(default_factory=dict)


@dataclass(frozen=True)
class Recommendation:
    action: str  # see the module docstring
    subject: str  # an agent id, a cache level or a task id
    reason: str


def find_bottlenecks(
    *,
    by_agent: Mapping[str, Sequence[Attempt]],
    agents: Sequence[AgentFigures],
    levels: Sequence[LevelFigures],
    overall: Overall,
    tasks: Sequence[TaskFigures],
    path: Sequence[str],
    path_s: float,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> tuple[Bottleneck, ...]:
    """Every bottleneck the figures show; `by_agent` holds the period's attempts, per agent."""
    return (
        *_slow_agents(agents, by_agent, thresholds),
        *_low_hit_rates(levels, thresholds),
        *_saturated_agents(agents, thresholds),
        *_queue_wait(overall, by_agent, thresholds),
        *_rising_errors(by_agent, overall.since, overall.until, thresholds),
        *_dominated_critical_path(tuple(path), path_s, tasks, thresholds),
    )


def _slow_agents(
    agents: Sequence[AgentFigures], by_agent: Mapping[str, Sequence[Attempt]], th: Thresholds
) -> list[Bottleneck]:
    found = []
    for agent in agents:
        p95 = agent.latency_p95_s
        if p95 is None or p95 <= th.slow_p95_s:
            continue
        slowest = max(by_agent[agent.agent], key=latency)
        found.append(
            Bottleneck(
                "slow_agent",
                agent.agent,
                f"{agent.agent}'s p95 latency is {p95:.2f} s, above {th.slow_p95_s:g} s.",
                {
                    "p95_s": round(p95, 3),
                    "threshold_s": th.slow_p95_s,
                    "attempts": agent.attempts,
                    "wait_share": round(agent.wait_share or 0.0, 3),
                    "slowest_task": slowest.task_id,
                    "slowest_s": round(latency(slowest), 3),
                },
            )
        )
    return found


def _low_hit_rates(levels: Sequence[LevelFigures], th: Thresholds) -> list[Bottleneck]:
    return [
        Bottleneck(
            "low_hit_rate",
            level.level,
            f"Cache level {level.level} hit {level.hit_rate:.0%} of its lookups, "
            f"below {th.min_hit_rate:.0%}.",
            {
                "hit_rate": round(level.hit_rate, 3),
                "threshold": th.min_hit_rate,
                "hits": level.hits,
                "misses": level.misses,
                "source": level.source,
            },
        )
        for level in levels
        if level.hit_rate is not None
        and level.hits + level.misses >= th.min_lookups
        and level.hit_rate < th.min_hit_rate
    ]


def _saturated_agents(agents: Sequence[AgentFigures], th: Thresholds) -> list[Bottleneck]:
    found = []
    for agent in agents:
        if agent.utilization < th.saturated:
            continue
        idle = tuple(a.agent for a in agents if a is not agent and a.utilization <= th.idle)
        if idle:
            found.append(
                Bottleneck(
                    "saturated_agent",
                    agent.agent,
                    f"{agent.agent} was busy {agent.utilization:.0%} of its capacity while "
                    f"{len(idle)} other agent(s) idled at {th.idle:.0%} or less.",
                    {
                        "utilization": round(agent.utilization, 3),
                        "capacity": agent.capacity,
                        "busy_s": round(agent.busy_s, 3),
                        "idle_agents": idle,
                        "threshold": th.saturated,
                    },
                )
            )
    return found


def _queue_wait(
    overall: Overall, by_agent: Mapping[str, Sequence[Attempt]], th: Thresholds
) -> list[Bottleneck]:
    share, mean_wait = overall.wait_share, overall.mean_wait_s
    if share is None or mean_wait is None:
        return []
    if share < th.queue_wait_share or mean_wait < th.min_queue_wait_s:
        return []
    waits = {name: sum(wait(a) for a in tries) for name, tries in by_agent.items()}
    most = max(sorted(waits), key=waits.__getitem__)
    return [
        Bottleneck(
            "queue_wait",
            "queue",
            f"Tasks spent {share:.0%} of their latency queued (mean wait {mean_wait:.2f} s).",
            {
                "wait_share": round(share, 3),
                "threshold": th.queue_wait_share,
                "mean_wait_s": round(mean_wait, 3),
                "most_waiting_agent": most,
                "agent_wait_s": round(waits[most], 3),
            },
        )
    ]


def _rising_errors(
    by_agent: Mapping[str, Sequence[Attempt]], since: float, until: float, th: Thresholds
) -> list[Bottleneck]:
    """Agents whose error rate in the second half of the period rose over the first half."""
    middle = (since + until) / 2
    found = []
    for name in sorted(by_agent):
        tries = sorted(by_agent[name], key=lambda a: a.ended_at)
        first = [a for a in tries if a.ended_at < middle]
        second = [a for a in tries if a.ended_at >= middle]
        if min(len(first), len(second)) < th.min_trend_attempts:
            continue
        before = sum(a.status != "done" for a in first) / len(first)
        after = sum(a.status != "done" for a in second) / len(second)
        if after - before < th.error_rate_rise:
            continue
        found.append(
            Bottleneck(
                "rising_errors",
                name,
                f"{name}'s error rate rose from {before:.0%} in the first half of the period "
                f"to {after:.0%} in the second.",
                {
                    "first_half_error_rate": round(before, 3),
                    "second_half_error_rate": round(after, 3),
                    "first_half_attempts": len(first),
                    "second_half_attempts": len(second),
                    "threshold": th.error_rate_rise,
                    "last_error": next((a.error for a in reversed(second) if a.error), ""),
                },
            )
        )
    return found


def _dominated_critical_path(
    path: tuple[str, ...], length: float, tasks: Sequence[TaskFigures], th: Thresholds
) -> list[Bottleneck]:
    if len(path) < 2 or length <= 0:
        return []
    by_id = {task.task_id: task for task in tasks}
    per_agent: dict[str, float] = defaultdict(float)
    for task_id in path:
        per_agent[by_id[task_id].agent] += by_id[task_id].span_s
    agent = max(sorted(per_agent), key=per_agent.__getitem__)
    share = per_agent[agent] / length
    if share < th.critical_path_share:
        return []
    longest = max((t for t in path if by_id[t].agent == agent), key=lambda t: by_id[t].span_s)
    return [
        Bottleneck(
            "critical_path",
            agent,
            f"{agent}'s tasks take {share:.0%} of the critical path ({length:.2f} s).",
            {
                "share": round(share, 3),
                "threshold": th.critical_path_share,
                "agent_time_s": round(per_agent[agent], 3),
                "path_time_s": round(length, 3),
                "path": path,
                "longest_task": longest,
            },
        )
    ]


def recommend(
    bottlenecks: Sequence[Bottleneck],
    agents: Sequence[AgentFigures],
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> tuple[Recommendation, ...]:
    """What to change for each bottleneck, in their order; one per action and subject."""
    figures = {agent.agent: agent for agent in agents}
    chosen: dict[tuple[str, str], Recommendation] = {}
    for bottleneck in bottlenecks:
        for advice in _advice(bottleneck, figures, thresholds):
            chosen.setdefault((advice.action, advice.subject), advice)
    return tuple(chosen.values())


def _advice(
    b: Bottleneck, figures: Mapping[str, AgentFigures], th: Thresholds
) -> list[Recommendation]:
    e = b.evidence
    if b.kind == "slow_agent":
        if _number(e["wait_share"]) >= th.queue_wait_share:
            lead = f"Most of {b.subject}'s latency is queue wait. "
            return [_raise_capacity(figures[b.subject], th, lead)]
        task = str(e["slowest_task"])
        return [
            Recommendation(
                "split_task",
                task,
                f"{task} took {_number(e['slowest_s']):.2f} s on {b.subject}; smaller tasks "
                "finish sooner and can run side by side.",
            )
        ]
    if b.kind == "low_hit_rate":
        return [
            Recommendation(
                "enlarge_cache",
                b.subject,
                f"{b.subject} hit {_number(e['hit_rate']):.0%}; a larger {b.subject} keeps more "
                "results, which helps when tasks repeat.",
            )
        ]
    if b.kind == "saturated_agent":
        idle = e["idle_agents"]
        names = ", ".join(idle) if isinstance(idle, tuple) else str(idle)
        return [
            _raise_capacity(figures[b.subject], th, ""),
            Recommendation(
                "change_strategy",
                b.subject,
                f"{names} idled while {b.subject} was saturated: a load-aware strategy "
                "(least_connections or adaptive) sends them work where they share its expertise.",
            ),
        ]
    if b.kind == "queue_wait":
        agent = str(e["most_waiting_agent"])
        return [
            Recommendation(
                "add_agent",
                agent,
                f"Tasks for {agent} waited longest ({_number(e['agent_wait_s']):.1f} s in all); "
                f"another agent with {agent}'s expertise would take them sooner.",
            )
        ]
    if b.kind == "rising_errors":
        return [
            Recommendation(
                "change_strategy",
                b.subject,
                f"{b.subject} fails more and more: the adaptive strategy routes around agents "
                "whose health drops. Check its runtime too.",
            )
        ]
    if b.kind == "critical_path":
        task = str(e["longest_task"])
        return [
            Recommendation(
                "split_task",
                task,
                f"{b.subject}'s tasks hold up the critical path; split {task}, its longest "
                "there, so the parts can run in parallel or go to other agents.",
            )
        ]
    return []


def _raise_capacity(figure: AgentFigures, th: Thresholds, lead: str) -> Recommendation:
    needed = math.ceil(figure.capacity * figure.utilization / th.target_utilization)
    suggested = max(figure.capacity + 1, needed)
    return Recommendation(
        "raise_capacity",
        figure.agent,
        f"{lead}Raise {figure.agent}'s capacity from {figure.capacity} to {suggested}: it was "
        f"busy {figure.utilization:.0%} of its capacity.",
    )


def _number(value: Evidence) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"evidence {value!r} is not a number")
