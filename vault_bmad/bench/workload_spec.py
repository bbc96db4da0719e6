"""The workload of `vault-bmad bench workload`: a fleet of ten agents, DAGs and repeated
requests, written as a vault, with the lower bound any system could reach on it.

Every task's body names an item marker ("item w3-2."); the loopback server draws the
call's latency from that marker (log-normal, median 2 s, sigma 0.8) times the agent's
slowness, so each system sees the same latency for the same task and the bound is exact.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

MEDIAN_LATENCY_S = 2.0
LATENCY_SIGMA = 0.8
TOPICS = ("architecture", "testing", "docs", "security", "data")


@dataclass(frozen=True)
class BenchAgent:
    id: str
    slowness: float  # a call takes the drawn latency times this
    capacity: int
    topics: tuple[str, str]


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


def model_of(agent_id: str) -> str:
    return f"bench-{agent_id}"


def slot_count(fleet: tuple[BenchAgent, ...] = FLEET) -> int:
    return sum(agent.capacity for agent in fleet)


def base_latency_s(marker: str) -> float:
    """The unscaled latency of the task with `marker`, before the agent's slowness."""
    draw = random.Random(marker).lognormvariate(math.log(MEDIAN_LATENCY_S), LATENCY_SIGMA)
    return min(10 * MEDIAN_LATENCY_S, max(0.1 * MEDIAN_LATENCY_S, draw))


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
            f"model: {model_of(agent.id)}\ncapacity: {agent.capacity}\n---\n"
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
