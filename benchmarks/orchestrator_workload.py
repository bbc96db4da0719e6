"""The workload of benchmarks/orchestrator_bench.py: a fleet, a DAG, a simulated runtime.

Agents differ in speed; one degrades after some calls. Tasks form a DAG with a backbone
chain and long-tailed base durations; some name an agent, some ask for an expertise. The
vault writer turns a workload into real notes; the lower bound and a clairvoyant list
schedule say what any scheduler could do on it.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from vault_bmad.errors import RuntimeUnavailable
from vault_bmad.runtimes.base import RunRequest, RuntimeOutput


@dataclass(frozen=True)
class AgentSpec:
    id: str
    slowness: float  # a call takes base duration x slowness: 0.5 is twice as fast as 1
    capacity: int
    weight: float
    expertise: tuple[str, str]
    title: str


FLEET = (
    AgentSpec("ada", 0.5, 2, 6.0, ("architecture", "design"), "Architect"),
    AgentSpec("bo", 0.75, 2, 4.0, ("testing", "design"), "Tester"),
    AgentSpec("cy", 1.0, 2, 3.0, ("architecture", "testing"), "Engineer"),
    AgentSpec("di", 1.5, 2, 2.0, ("docs", "design"), "Writer"),
    AgentSpec("ed", 2.0, 2, 1.5, ("testing", "docs"), "Reviewer"),
    AgentSpec("fa", 3.0, 2, 1.0, ("architecture", "docs"), "Planner"),
)
TOPICS = ("architecture", "design", "testing", "docs")


@dataclass(frozen=True)
class Degradation:
    """From call `after_calls + 1` on, the agent is `slow_factor` times slower for `slow_s`
    seconds, then fails each call (after `error_delay_s`) for `error_s` seconds, then is well."""

    agent_id: str = "bo"
    after_calls: int = 12
    slow_factor: float = 5.0
    slow_s: float = 0.8
    error_s: float = 0.8
    error_delay_s: float = 0.05


NO_DEGRADATION = Degradation(after_calls=10**9)


@dataclass(frozen=True)
class Workload:
    """Tasks by id in topological order, with base durations and agent hints."""

    base_s: dict[str, float]
    deps: dict[str, tuple[str, ...]]
    named: dict[str, str]  # task id -> the agent its note names
    topic: dict[str, str]  # task id -> the expertise its body asks for


def make_workload(seed: int, n: int) -> Workload:
    """A backbone chain through every eighth task plus random links to the 30 before each;
    base durations log-normal (median 50 ms, sigma 0.8) clipped to 20..400 ms; 10% of tasks
    name an agent, 25% ask for an expertise, the rest leave the choice open."""
    rng = random.Random(seed)
    ids = [f"tasks/t{i:03d}" for i in range(n)]
    deps: dict[str, tuple[str, ...]] = {}
    for i, task_id in enumerate(ids):
        links = {j for j in range(max(0, i - 30), i) if rng.random() < 0.05}
        if i >= 8 and i % 8 == 0:
            links.add(i - 8)
        deps[task_id] = tuple(ids[j] for j in sorted(links))
    base = {t: min(0.4, max(0.02, 0.05 * rng.lognormvariate(0.0, 0.8))) for t in ids}
    named: dict[str, str] = {}
    topic: dict[str, str] = {}
    for task_id in ids:
        draw = rng.random()
        if draw < 0.10:
            named[task_id] = rng.choice(FLEET).id
        elif draw < 0.35:
            topic[task_id] = rng.choice(TOPICS)
    return Workload(base, deps, named, topic)


def scaled(workload: Workload, factor: float) -> Workload:
    """The same workload with every base duration times `factor`."""
    return replace(workload, base_s={t: s * factor for t, s in workload.base_s.items()})


def instant_workload(deps: dict[str, tuple[str, ...]]) -> Workload:
    """Tasks that take no time: what is left is the cost of running them."""
    return Workload(dict.fromkeys(deps, 0.0), deps, {}, {})


def eligible_agents(workload: Workload, task_id: str, fleet: Iterable[AgentSpec]) -> list[str]:
    """The agents the orchestrator may give a task: the one it names, or those whose
    expertise it asks for, or any."""
    if task_id in workload.named:
        return [workload.named[task_id]]
    topic = workload.topic.get(task_id)
    return [a.id for a in fleet if topic is None or topic in a.expertise]


@dataclass(frozen=True)
class Bound:
    critical_path_s: float
    work_over_capacity_s: float

    @property
    def seconds(self) -> float:
        return max(self.critical_path_s, self.work_over_capacity_s)


def lower_bound(workload: Workload, fleet: Iterable[AgentSpec], concurrency: int) -> Bound:
    """max(critical path with every task at the best speed, total base work / the summed
    speed of the `concurrency` fastest slots); degradation and agent hints are ignored."""
    agents = list(fleet)
    best = min(agent.slowness for agent in agents)
    finish: dict[str, float] = {}
    for task_id, needs in workload.deps.items():
        start = max((finish[d] for d in needs), default=0.0)
        finish[task_id] = start + workload.base_s[task_id] * best
    speeds = sorted((1 / a.slowness for a in agents for _ in range(a.capacity)), reverse=True)
    work = sum(workload.base_s.values()) / sum(speeds[:concurrency])
    return Bound(max(finish.values(), default=0.0), work)


def list_schedule(workload: Workload, fleet: Iterable[AgentSpec]) -> float:
    """The makespan of a clairvoyant HEFT-style schedule without degradation: tasks by
    upward rank (base x mean slowness), each on the eligible slot where it ends first."""
    agents = {agent.id: agent for agent in fleet}
    mean = statistics.fmean(agent.slowness for agent in agents.values())
    children: dict[str, list[str]] = {task_id: [] for task_id in workload.deps}
    for task_id, needs in workload.deps.items():
        for need in needs:
            children[need].append(task_id)
    rank: dict[str, float] = {}
    for task_id in reversed(workload.deps):
        below = max((rank[c] for c in children[task_id]), default=0.0)
        rank[task_id] = workload.base_s[task_id] * mean + below
    free_at = {(a.id, k): 0.0 for a in agents.values() for k in range(a.capacity)}
    finish: dict[str, float] = {}
    for task_id in sorted(workload.deps, key=lambda t: (-rank[t], t)):  # parents rank higher
        ready = max((finish[d] for d in workload.deps[task_id]), default=0.0)
        allowed = set(eligible_agents(workload, task_id, agents.values()))
        ends = {
            slot: max(at, ready) + workload.base_s[task_id] * agents[slot[0]].slowness
            for slot, at in free_at.items()
            if slot[0] in allowed
        }
        slot = min(ends, key=lambda s: (ends[s], s))
        finish[task_id] = free_at[slot] = ends[slot]
    return max(finish.values(), default=0.0)


@dataclass(frozen=True)
class Call:
    """One runtime call as the simulated agent saw it."""

    task_id: str
    agent_id: str
    started: float  # before waiting for a slot of the agent
    ended: float
    ok: bool


class SimulatedRuntime:
    """A runtime named "template" that sleeps instead of working; safe across threads.

    Each agent runs at most `capacity` calls at once (more wait for a slot, as at a real
    backend); the degrading agent's phase is read when a call gets its slot.
    """

    name = "template"

    def __init__(
        self,
        base_s: dict[str, float],
        fleet: Iterable[AgentSpec],
        degradation: Degradation,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base_s = base_s
        self._agents = {agent.id: agent for agent in fleet}
        self._slots = {a.id: threading.BoundedSemaphore(a.capacity) for a in self._agents.values()}
        self._degradation = degradation
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._calls_by_agent: Counter[str] = Counter()
        self._degraded_at: float | None = None
        self._calls: list[Call] = []

    @property
    def calls(self) -> tuple[Call, ...]:
        with self._lock:
            return tuple(self._calls)

    def run(self, request: RunRequest) -> RuntimeOutput:
        agent = self._agents[request.agent_id]
        started = self._clock()
        with self._slots[agent.id]:
            phase = self.phase(agent.id)
            if phase == "error":
                self._sleep(self._degradation.error_delay_s)
                self._record(request.task_id, agent.id, started, ok=False)
                raise RuntimeUnavailable(f"agent {agent.id} is unavailable (simulated)")
            factor = self._degradation.slow_factor if phase == "slow" else 1.0
            self._sleep(self._base_s[request.task_id] * agent.slowness * factor)
        self._record(request.task_id, agent.id, started, ok=True)
        return RuntimeOutput(f"{request.title}: done by {agent.id}\n", self.name)

    def phase(self, agent_id: str) -> str:
        """Count one call of the agent and say how it goes: normal, slow or error."""
        plan = self._degradation
        with self._lock:
            self._calls_by_agent[agent_id] += 1
            if agent_id != plan.agent_id or self._calls_by_agent[agent_id] <= plan.after_calls:
                return "normal"
            now = self._clock()
            if self._degraded_at is None:
                self._degraded_at = now
            into = now - self._degraded_at
        if into < plan.slow_s:
            return "slow"
        return "error" if into < plan.slow_s + plan.error_s else "normal"

    def _record(self, task_id: str, agent_id: str, started: float, *, ok: bool) -> None:
        call = Call(task_id, agent_id, started, self._clock(), ok)
        with self._lock:
            self._calls.append(call)


def note_name(task_id: str) -> str:
    """The task note's file name: "tasks/t017" lives in "Tasks/T017.md"."""
    return task_id.rsplit("/", 1)[-1].upper()


def write_vault(root: Path, workload: Workload, fleet: Iterable[AgentSpec]) -> None:
    """The workload as notes: one per agent under Agents/, one per task under Tasks/."""
    (root / "Agents").mkdir(parents=True)
    (root / "Tasks").mkdir()
    for agent in fleet:
        (root / "Agents" / f"{agent.id}.md").write_text(
            f"---\ntype: agent\nid: {agent.id}\nname: {agent.id.title()}\n"
            f"title: {agent.title}\nexpertise: [{', '.join(agent.expertise)}]\n"
            f"runtime: template\nweight: {agent.weight:g}\ncapacity: {agent.capacity}\n---\n"
            f"You are {agent.id.title()}.\n",
            encoding="utf-8",
        )
    for task_id, needs in workload.deps.items():
        name = note_name(task_id)
        lines = ["---", "type: task", "status: todo"]
        if task_id in workload.named:
            lines.append(f"agent: {workload.named[task_id]}")
        if needs:
            links = ", ".join(f'"[[{note_name(need)}]]"' for need in needs)
            lines.append(f"depends_on: [{links}]")
        lines.append(f"complexity: {1 + int(workload.base_s[task_id] / 0.05)}")  # a rough hint
        topic = workload.topic.get(task_id)
        # No word of the body may match an agent's title, or that agent alone qualifies.
        body = f"Improve the {topic} of item {name}." if topic else f"Carry out item {name}."
        (root / "Tasks" / f"{name}.md").write_text(
            "\n".join([*lines, "---", body, ""]), encoding="utf-8"
        )
