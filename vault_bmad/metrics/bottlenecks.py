"""Bottlenecks found in a period, each with its evidence, and what to do about them.

Pure. Every threshold sits in one `Thresholds` value. Advice follows only from evidence:
more capacity only for an agent busy near its capacity while its tasks queued, a larger
cache only when the level's ghost list shows misses that more room would have hit, and a
queue wait is told by its causes (an agent out, full agents, retry backoff), and is a
finding of its own only when most of it was spent waiting for a worker.

The kinds, checked in this order: `agent_out`, `saturated_agent`, `queue_wait`,
`slow_agent`, `small_cache`, `rising_errors` and `critical_path`. The actions:
`check_agent`, `raise_capacity`, `raise_workers`, `split_task`, `enlarge_cache` and
`change_strategy`.
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
    percentile,
    run_time,
    wait,
)
from vault_bmad.metrics.records import AgentChange, Attempt

Evidence = float | int | str | tuple[str, ...]
Outage = tuple[float, float, str]  # (from, until, why), epoch seconds


@dataclass(frozen=True)
class Thresholds:
    """Where a figure becomes a bottleneck."""

    slow_p95_s: float = 5.0  # an agent whose p95 run time is above this is slow
    min_lookups: int = 20  # lookups a cache level needs before it is judged
    min_ghost_share: float = 0.05  # misses more room would have hit, of all lookups
    saturated: float = 0.9  # utilization at or above this, with tasks waiting, is saturated
    min_queue_wait_s: float = 1.0  # a mean wait shorter than this is no wait worth telling
    queue_wait_share: float = 0.5  # queue wait's share of latency that is too long
    error_rate_rise: float = 0.1  # second half's error rate minus the first half's
    min_trend_attempts: int = 5  # attempts each half of the period needs for a trend
    critical_path_share: float = 0.6  # one agent's share of the critical path


DEFAULT_THRESHOLDS = Thresholds()
GHOST_ROOM = 0.5  # a level's ghost lists remember as many keys as half its capacity


@dataclass(frozen=True)
class Bottleneck:
    kind: str  # see the module docstring
    subject: str  # an agent id, a cache level, or "queue"
    message: str
    evidence: dict[str, Evidence] = field(default_factory=dict)


@dataclass(frozen=True)
class Recommendation:
    action: str  # see the module docstring
    subject: str  # an agent id, a cache level, a task id, or "pool"
    reason: str


def outages(changes: Sequence[AgentChange], until: float) -> dict[str, list[Outage]]:
    """When each agent was out of service (out or probing), from its recorded changes."""
    found: dict[str, list[Outage]] = defaultdict(list)
    out_since: dict[str, tuple[float, str]] = {}
    for change in sorted(changes, key=lambda c: c.at):
        if change.state == "in_service":
            if (left := out_since.pop(change.agent, None)) is not None:
                found[change.agent].append((left[0], change.at, left[1]))
        elif change.agent not in out_since:
            out_since[change.agent] = (change.at, change.reason)
    for agent, (start, why) in out_since.items():
        found[agent].append((start, until, why))
    return dict(found)


def _overlap(start: float, end: float, spans: Sequence[Outage]) -> float:
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b, _ in spans)


@dataclass(frozen=True)
class _Waits:
    """An agent's queue wait in seconds, by cause."""

    out: float = 0.0
    backoff: float = 0.0
    rest: float = 0.0


def _waits(tries: Sequence[Attempt], out: Sequence[Outage]) -> _Waits:
    """A retry's wait is its backoff; of the rest, the part that fell while the agent was
    out is the outage's."""
    backoff = sum(wait(a) for a in tries if a.attempt > 1)
    during = sum(_overlap(a.queued_at, a.started_at, out) for a in tries if a.attempt == 1)
    first = sum(wait(a) for a in tries if a.attempt == 1)
    return _Waits(during, backoff, max(0.0, first - during))


def find_bottlenecks(
    *,
    by_agent: Mapping[str, Sequence[Attempt]],
    agents: Sequence[AgentFigures],
    levels: Sequence[LevelFigures],
    overall: Overall,
    tasks: Sequence[TaskFigures],
    path: Sequence[str],
    path_s: float,
    out: Mapping[str, Sequence[Outage]] | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> tuple[Bottleneck, ...]:
    """Every bottleneck the period shows; `by_agent` holds its attempts per agent and `out`
    when each agent was out of service."""
    th = thresholds
    waits = {name: _waits(tries, (out or {}).get(name, ())) for name, tries in by_agent.items()}
    saturated = _saturated_agents(agents, th)
    return (
        *_agents_out(waits, (out or {}), th),
        *saturated,
        *_queue_wait(overall, waits, {b.subject for b in saturated}, th),
        *_slow_agents(by_agent, th),
        *_small_caches(levels, th),
        *_rising_errors(by_agent, overall.since, overall.until, th),
        *_dominated_critical_path(tuple(path), path_s, tasks, th),
    )


def _agents_out(
    waits: Mapping[str, _Waits], out: Mapping[str, Sequence[Outage]], th: Thresholds
) -> list[Bottleneck]:
    found = []
    for agent in sorted(waits):
        waited = waits[agent].out
        if waited < th.min_queue_wait_s or not out.get(agent):
            continue
        spans = out[agent]
        found.append(
            Bottleneck(
                "agent_out",
                agent,
                f"{agent} was out of service {len(spans)} time(s) ({spans[-1][2]}); "
                f"its tasks waited {waited:.1f} s meanwhile.",
                {
                    "waited_s": round(waited, 3),
                    "times_out": len(spans),
                    "out_s": round(sum(b - a for a, b, _ in spans), 3),
                    "reason": spans[-1][2],
                },
            )
        )
    return found


def _saturated_agents(agents: Sequence[AgentFigures], th: Thresholds) -> list[Bottleneck]:
    """Agents busy near their capacity whenever they had work, while their tasks queued."""
    found = []
    for agent in agents:
        share, waited = agent.utilization, agent.mean_wait_s
        if share is None or waited is None or share < th.saturated:
            continue
        if waited < th.min_queue_wait_s:
            continue
        demand = ((agent.latency_mean_s or 0.0) * agent.attempts) / agent.work_s
        found.append(
            Bottleneck(
                "saturated_agent",
                agent.agent,
                f"{agent.agent} was busy {share:.0%} of its capacity while it had work, and "
                f"its tasks waited {waited:.2f} s on average.",
                {
                    "utilization": round(share, 3),
                    "capacity": agent.capacity,
                    "mean_wait_s": round(waited, 3),
                    "in_system": round(demand, 2),  # its tasks queued or running, on average
                    "threshold": th.saturated,
                },
            )
        )
    return found


def _queue_wait(
    overall: Overall, waits: Mapping[str, _Waits], saturated: set[str], th: Thresholds
) -> list[Bottleneck]:
    share, mean_wait = overall.wait_share, overall.mean_wait_s
    if share is None or mean_wait is None:
        return []
    if share < th.queue_wait_share or mean_wait < th.min_queue_wait_s:
        return []
    full = sum(w.rest for name, w in waits.items() if name in saturated)
    causes = {
        "while_out_s": sum(w.out for w in waits.values()),
        "at_full_agents_s": full,
        "retry_backoff_s": sum(w.backoff for w in waits.values()),
        "for_a_worker_s": sum(w.rest for name, w in waits.items() if name not in saturated),
    }
    if causes["for_a_worker_s"] < sum(causes.values()) / 2:
        return []  # mostly told by outages, full agents or backoff: their findings say it
    told = ", ".join(f"{s:.1f} s {k[:-2].replace('_', ' ')}" for k, s in causes.items() if s > 0)
    return [
        Bottleneck(
            "queue_wait",
            "queue",
            f"Tasks spent {share:.0%} of their latency queued (mean wait {mean_wait:.2f} s): "
            f"{told}.",
            {
                "wait_share": round(share, 3),
                "threshold": th.queue_wait_share,
                "mean_wait_s": round(mean_wait, 3),
                **{k: round(s, 3) for k, s in causes.items()},
            },
        )
    ]


def _slow_agents(by_agent: Mapping[str, Sequence[Attempt]], th: Thresholds) -> list[Bottleneck]:
    """Agents whose own run time is long: queue wait is no slowness of theirs."""
    found = []
    for name in sorted(by_agent):
        tries = by_agent[name]
        p95 = percentile((run_time(a) for a in tries), 95)
        if p95 is None or p95 <= th.slow_p95_s:
            continue
        slowest = max(tries, key=run_time)
        found.append(
            Bottleneck(
                "slow_agent",
                name,
                f"{name}'s p95 run time is {p95:.2f} s, above {th.slow_p95_s:g} s.",
                {
                    "p95_run_s": round(p95, 3),
                    "threshold_s": th.slow_p95_s,
                    "attempts": len(tries),
                    "slowest_task": slowest.task_id,
                    "slowest_s": round(run_time(slowest), 3),
                },
            )
        )
    return found


def _small_caches(levels: Sequence[LevelFigures], th: Thresholds) -> list[Bottleneck]:
    """Levels whose ghost lists show misses that more room would have turned into hits."""
    found = []
    for level in levels:
        lookups = level.hits + level.misses
        gain = level.ghost_hits / lookups if lookups else 0.0
        if lookups < th.min_lookups or gain < th.min_ghost_share:
            continue
        found.append(
            Bottleneck(
                "small_cache",
                level.level,
                f"{level.ghost_hits} of cache level {level.level}'s {level.misses} misses were "
                f"of results it had dropped for room: {GHOST_ROOM:.0%} more room would have "
                f"hit them, {gain:.0%} more of its lookups.",
                {
                    "hit_rate": round(level.hit_rate or 0.0, 3),
                    "ghost_hits": level.ghost_hits,
                    "misses": level.misses,
                    "lookups": lookups,
                    "gain": round(gain, 3),
                    "threshold": th.min_ghost_share,
                },
            )
        )
    return found


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
        per_agent[by_id[task_id].agent] += by_id[task_id].last_run_s
    agent = max(sorted(per_agent), key=per_agent.__getitem__)
    share = per_agent[agent] / length
    if share < th.critical_path_share:
        return []
    on_it = [t for t in path if by_id[t].agent == agent]
    longest = max(on_it, key=lambda t: by_id[t].last_run_s)
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
    bottlenecks: Sequence[Bottleneck], agents: Sequence[AgentFigures]
) -> tuple[Recommendation, ...]:
    """What to change for the bottlenecks, in their order; one per action and subject."""
    figures = {agent.agent: agent for agent in agents}
    chosen: dict[tuple[str, str], Recommendation] = {}
    for bottleneck in bottlenecks:
        for advice in advise(bottleneck, figures):
            chosen.setdefault((advice.action, advice.subject), advice)
    return tuple(chosen.values())


def advise(b: Bottleneck, figures: Mapping[str, AgentFigures]) -> list[Recommendation]:
    """What the evidence of one bottleneck says to change, if anything."""
    e = b.evidence
    if b.kind == "agent_out":
        return [
            Recommendation(
                "check_agent",
                b.subject,
                f"Tasks only {b.subject} takes wait while it is out ({e['reason']}): check "
                "its runtime, or give another agent its expertise.",
            )
        ]
    if b.kind == "saturated_agent":
        figure = figures[b.subject]
        suggested = max(figure.capacity + 1, math.ceil(_number(e["in_system"])))
        return [
            Recommendation(
                "raise_capacity",
                b.subject,
                f"Raise {b.subject}'s capacity from {figure.capacity} to {suggested}: "
                f"{_number(e['in_system']):.1f} of its tasks were queued or running on average "
                "while it had work.",
            )
        ]
    if b.kind == "queue_wait":
        waited = _number(e["for_a_worker_s"])
        return [
            Recommendation(
                "raise_workers",
                "pool",
                f"Tasks waited {waited:.1f} s for a free worker while their agents had room: "
                "raise max_workers (and max_concurrent_agents).",
            )
        ]
    if b.kind == "slow_agent":
        task = str(e["slowest_task"])
        return [
            Recommendation(
                "split_task",
                task,
                f"{task} ran {_number(e['slowest_s']):.2f} s on {b.subject}; smaller tasks "
                "finish sooner and can run side by side.",
            )
        ]
    if b.kind == "small_cache":
        setting = f"cache_{b.subject.lower()}_size"
        return [
            Recommendation(
                "enlarge_cache",
                b.subject,
                f"Raise {setting} by half: about {_number(e['gain']):.0%} more of "
                f"{b.subject}'s lookups would hit ({e['ghost_hits']} of its {e['misses']} misses).",
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


def _number(value: Evidence) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"evidence {value!r} is not a number")
