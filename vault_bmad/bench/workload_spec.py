"""The workload of the benchmarks: a fleet of ten agents, DAGs and repeated requests,
written as a vault, with the lower bound any system could reach on it.

Every task's body names an item marker ("item w3-2."); the fleet (the loopback server of
`fleet_llm.py`, or the in-process `simulated_fleet.py`) draws the call's latency from
that marker (log-normal, median 2 s, sigma 0.8) times the agent's slowness, so each
system sees the same latency for the same task and the bound is exact. One agent degrades
partway through (`Degradation`).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MEDIAN_LATENCY_S = 2.0
LATENCY_SIGMA = 0.8
TOPICS = ("architecture", "testing", "docs", "security", "data")


@dataclass(frozen=True)
class BenchAgent:
    id: str
    slowness: float  # a call takes the drawn latency times this
    capacity: int
    topics: tuple[str, str]

    @property
    def weight(self) -> float:
        """Its share for weighted strategies: the calls it completes per second."""
        return round(self.capacity / self.slowness, 2)


FLEET = (
    BenchAgent("ada", 0.5, 3, ("architecture", "testing")),
    BenchAgent("bo", 0.6, 3, ("testing", "docs")),
    BenchAgent("cy", 0.75, 2, ("docs", "security")),
    BenchAgent("di", 0.9, 2, ("security", "data")),
    BenchAgent("ed", 1.0, 2, ("data", "architecture")),  # degrades: see FleetLLM
    BenchAgent("fa", 1.25, 2, ("architecture", "docs")),
    BenchAgent("gu", 1.5, 2, ("testing", "security")),
    BenchAgent("hu", 2.0, 1, ("docs", "data")),
    BenchAgent("io", 2.5, 1, ("security", "architecture")),
    BenchAgent("jo", 3.0, 1, ("data", "testing")),
)
DEGRADING_AGENT = "ed"
# Each workflow: steps with the steps they require; a diamond with a tail.
WORKFLOW_SHARE = 0.07  # chance that the next draw is a workflow (6 tasks) not one request
WORKFLOW_SHAPE: tuple[tuple[int, ...], ...] = ((), (0,), (0,), (1, 2), (3,), (3,))


MODEL_PREFIX = "bench-"


def model_of(agent_id: str) -> str:
    return f"{MODEL_PREFIX}{agent_id}"


def slot_count(fleet: tuple[BenchAgent, ...] = FLEET) -> int:
    return sum(agent.capacity for agent in fleet)


def base_latency_s(marker: str) -> float:
    """The unscaled latency of the task with `marker`, before the agent's slowness."""
    draw = random.Random(marker).lognormvariate(math.log(MEDIAN_LATENCY_S), LATENCY_SIGMA)
    return min(10 * MEDIAN_LATENCY_S, max(0.1 * MEDIAN_LATENCY_S, draw))


_MARKER = re.compile(r"of item (\S+)\.")


def marker_in(text: str) -> str:
    """The item marker a request's text names (the whole text when it names none)."""
    found = _MARKER.search(text)
    return found.group(1) if found else text


Phase = Literal["well", "slow", "failing"]


@dataclass(frozen=True)
class Degradation:
    """Calls after `after_calls` to the agent are `slow_factor` times slower, the next
    `failing_calls` fail (after `failing_share` of the call's latency), and the agent is
    well after that."""

    agent_id: str = DEGRADING_AGENT
    after_calls: int = 6
    slow_calls: int = 4
    slow_factor: float = 4.0
    failing_calls: int = 6
    failing_share: float = 0.02

    def phase(self, agent_id: str, call: int) -> Phase:
        """How the agent's `call`-th call (counted from 1) goes."""
        if agent_id != self.agent_id or call <= self.after_calls:
            return "well"
        if call <= self.after_calls + self.slow_calls:
            return "slow"
        return (
            "failing" if call <= self.after_calls + self.slow_calls + self.failing_calls else "well"
        )

    def seconds(self, phase: Phase, latency_s: float) -> float:
        """How long a call of `latency_s` takes (or takes to fail) in `phase`."""
        if phase == "failing":
            return self.failing_share * latency_s
        return latency_s * (self.slow_factor if phase == "slow" else 1.0)


DEGRADATION = Degradation()


@dataclass(frozen=True)
class BenchTask:
    id: str  # also the note's file stem under Tasks/
    marker: str
    agent: str | None  # named in the note; None lets the system choose
    topic: str | None
    requires: tuple[str, ...]

    @property
    def body(self) -> str:
        if self.topic is None:
            return f"Answer the question of item {self.marker}."
        return f"Improve the {self.topic} of item {self.marker}."


def make_tasks(seed: int, n_tasks: int) -> tuple[BenchTask, ...]:
    """About 30% of tasks are workflow steps (unique, by expertise), the rest repeat catalog
    requests to a named agent with Zipf-like popularity (weight 1/rank^1.1). Topologically
    ordered."""
    rng = random.Random(seed)
    catalog_size = max(4, n_tasks // 5)
    weights = [1 / rank**1.1 for rank in range(1, catalog_size + 1)]
    catalog = [(f"q{k}", rng.choice(FLEET).id) for k in range(catalog_size)]
    tasks: list[BenchTask] = []
    workflow = 0
    while len(tasks) < n_tasks:
        if rng.random() < WORKFLOW_SHARE and len(tasks) + len(WORKFLOW_SHAPE) <= n_tasks:
            ids = [f"w{workflow}-s{i}" for i in range(len(WORKFLOW_SHAPE))]
            for i, needs in enumerate(WORKFLOW_SHAPE):
                topic = rng.choice(TOPICS)
                requires = tuple(ids[j] for j in needs)
                tasks.append(BenchTask(ids[i], ids[i], None, topic, requires))
            workflow += 1
        else:
            marker, agent = rng.choices(catalog, weights)[0]
            tasks.append(BenchTask(f"r{len(tasks)}", marker, agent, None, ()))
    return tuple(tasks)


def eligible(task: BenchTask, fleet: tuple[BenchAgent, ...] = FLEET) -> list[BenchAgent]:
    """The agents a task may go to: the one it names, or those with its topic."""
    if task.agent is not None:
        return [agent for agent in fleet if agent.id == task.agent]
    return [agent for agent in fleet if task.topic in agent.topics]


@dataclass(frozen=True)
class LowerBound:
    critical_path_s: float
    work_over_capacity_s: float
    busiest_agent_s: float

    @property
    def seconds(self) -> float:
        return max(self.critical_path_s, self.work_over_capacity_s, self.busiest_agent_s)


def lower_bound(tasks: tuple[BenchTask, ...], fleet: tuple[BenchAgent, ...] = FLEET) -> LowerBound:
    """Unscaled: the longest chain, the total work over all slots, and the work named to
    one agent over its slots; each task at its fastest eligible agent, each distinct request
    once (the rest are cache hits), degradation left out."""
    finish: dict[str, float] = {}
    seen: set[tuple[str, str | None]] = set()
    total = 0.0
    named: dict[str, float] = {}
    for task in tasks:
        cost = base_latency_s(task.marker) * min(a.slowness for a in eligible(task, fleet))
        start = max((finish[need] for need in task.requires), default=0.0)
        finish[task.id] = start + cost
        if (task.marker, task.agent) in seen:
            continue
        seen.add((task.marker, task.agent))
        total += cost
        if task.agent is not None:
            named[task.agent] = named.get(task.agent, 0.0) + cost
    capacity = {agent.id: agent.capacity for agent in fleet}
    busiest = max((work / capacity[a] for a, work in named.items()), default=0.0)
    return LowerBound(max(finish.values(), default=0.0), total / slot_count(fleet), busiest)


def list_schedule(tasks: tuple[BenchTask, ...], fleet: tuple[BenchAgent, ...] = FLEET) -> float:
    """The unscaled makespan of a clairvoyant HEFT-style schedule without degradation: tasks
    by upward rank (latency x mean slowness), each on the eligible slot where it ends first;
    a request already scheduled is served when its first run ends, taking no slot."""
    mean = sum(agent.slowness for agent in fleet) / len(fleet)
    children: dict[str, list[str]] = {task.id: [] for task in tasks}
    for task in tasks:
        for need in task.requires:
            children[need].append(task.id)
    rank: dict[str, float] = {}
    for task in reversed(tasks):
        below = max((rank[c] for c in children[task.id]), default=0.0)
        rank[task.id] = base_latency_s(task.marker) * mean + below
    free_at = {(a.id, k): 0.0 for a in fleet for k in range(a.capacity)}
    finish: dict[str, float] = {}
    answered: dict[tuple[str, str | None], float] = {}  # request -> when its first run ends
    for task in sorted(tasks, key=lambda t: (-rank[t.id], t.id)):  # parents rank higher
        ready = max((finish[need] for need in task.requires), default=0.0)
        request = (task.marker, task.agent)
        if request in answered:
            finish[task.id] = max(ready, answered[request])
            continue
        ends = {
            (agent.id, k): max(free_at[(agent.id, k)], ready)
            + base_latency_s(task.marker) * agent.slowness
            for agent in eligible(task, fleet)
            for k in range(agent.capacity)
        }
        slot = min(ends, key=lambda s: (ends[s], s))
        finish[task.id] = answered[request] = free_at[slot] = ends[slot]
    return max(finish.values(), default=0.0)


def write_vault(
    root: Path, tasks: tuple[BenchTask, ...], fleet: tuple[BenchAgent, ...] = FLEET
) -> None:
    """Agents under Agents/ (llm runtime, one model each) and tasks under Tasks/."""
    (root / "Agents").mkdir(parents=True)
    (root / "Tasks").mkdir()
    for agent in fleet:
        (root / "Agents" / f"{agent.id}.md").write_text(
            f"---\ntype: agent\nid: {agent.id}\nname: {agent.id.title()}\n"
            f"expertise: [{', '.join(agent.topics)}]\nruntime: llm\n"
            f"model: {model_of(agent.id)}\ncapacity: {agent.capacity}\n"
            f"weight: {agent.weight:g}\n---\n"
            f"You are {agent.id.title()}. Answer briefly.\n",
            encoding="utf-8",
        )
    for task in tasks:
        lines = ["---", "type: task", "status: todo", "retries: 4"]
        if task.agent is not None:
            lines.append(f"agent: {task.agent}")
        if task.requires:
            lines.append("depends_on: [" + ", ".join(f'"[[{n}]]"' for n in task.requires) + "]")
        (root / "Tasks" / f"{task.id}.md").write_text(
            "\n".join([*lines, "---", task.body, ""]), encoding="utf-8"
        )
