"""Agent choice: expertise matching, the weighted agent score, and balancing strategies.

An agent qualifies for a task that names no agent when its expertise match is at least
`min_match` of the best-matching agent's (every agent qualifies when no agent's text matches
at all). Among qualifying agents that are in service and have a free slot, the strategy picks:

- round_robin: each in turn;
- weighted_round_robin: smooth weighted round robin (as nginx), in proportion to AgentDef.weight;
- least_connections: fewest tasks in flight per unit of weight;
- adaptive (default): the earliest expected finish, as list schedulers (HEFT) place work:
  the candidate whose expected time for this task, divided by its success rate, is least.
  The expected time is the DurationPredictor's: the agent's own history on such tasks,
  pulled toward all history's, and for an agent with no history of its own what all
  history says, so that it is tried where it beats the known ones or they are full (not on
  a near tie with an agent known to be fast). Without a prediction it is the agent's
  peak-EWMA latency; an agent with neither counts as the slowest of those known.
  Candidates within 10% of the best are told apart by the weighted score

      score = 0.4*expertise + 0.3*availability + 0.2*performance + 0.1*load

  where expertise is the match relative to the best agent's; availability is health times
  the free share of capacity; performance is (1 - error rate) times the fastest candidate's
  peak-EWMA latency over this one's; load is 1 / (1 + (in flight + queued for it) /
  capacity). With no history at all, it is the power of two choices (as Finagle and
  Linkerd): of two random candidates, the higher score wins.

A task naming alternatives goes to one of them, chosen as above. A task that names an agent
goes to that agent while it is in service (waiting while it is
full); when it is out, to the best-scoring other agent that qualifies, or it waits.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cachetools import LRUCache

from vault_bmad.config import STRATEGIES
from vault_bmad.engine.similarity import TfIdfIndex, WeightedText
from vault_bmad.model.definitions import AgentDef, TaskDef


@dataclass(frozen=True)
class Candidate:
    """One agent as the balancer sees it at the moment of choice."""

    agent_id: str
    weight: float = 1.0
    capacity: int = 1
    in_flight: int = 0
    backlog: int = 0  # queued tasks that can only go to this agent
    health: float = 1.0  # HealthMonitor score
    peak_latency: float | None = None  # seconds; None when it has no history
    error_rate: float = 0.0
    expected_seconds: float | None = None  # this task on this agent, from its own history

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.in_flight)


NEAR_TIE = 1.1  # expected finishes within 10% of the best are told apart by score
MAX_ERROR_RATE = 0.95  # expected attempts = 1 / (1 - error rate), capped at 20


@dataclass(frozen=True)
class ScoreWeights:
    expertise: float = 0.4
    availability: float = 0.3
    performance: float = 0.2
    load: float = 0.1


@dataclass(frozen=True)
class AgentScore:
    """The weighted score of one agent for one task, with its parts (each in [0, 1])."""

    agent_id: str
    total: float
    expertise: float
    availability: float
    performance: float
    load: float


def agent_text(agent: AgentDef) -> WeightedText:
    """What an agent is matched on: its expertise (double weight), title and when-to-use."""
    return [(" ".join(agent.expertise), 2.0), (agent.title, 1.0), (agent.when_to_use, 0.5)]


def task_text(task: TaskDef) -> WeightedText:
    """What a task is matched on: its title, body and tags (double weight)."""
    return [(task.title, 1.0), (task.body, 1.0), (" ".join(task.tags), 2.0)]


class ExpertiseMatcher:
    """How well each agent's expertise fits a task, cached per task text."""

    def __init__(self, agents: Iterable[AgentDef], *, cache_size: int = 4096) -> None:
        self._index = TfIdfIndex({agent.id: agent_text(agent) for agent in agents})
        self._cache: LRUCache[tuple[object, ...], dict[str, float]] = LRUCache(cache_size)

    def raw(self, task: TaskDef) -> dict[str, float]:
        """Cosine similarity in [0, 1] between the task and each agent."""
        key = (task.id, task.title, task.body, task.tags)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._index.similarities(task_text(task))
        return cached

    def relative(self, task: TaskDef) -> dict[str, float]:
        """Each agent's match divided by the best match (all zero when nothing matches)."""
        raw = self.raw(task)
        best = max(raw.values(), default=0.0)
        return {a: (s / best if best > 0 else 0.0) for a, s in raw.items()}

    def qualifying(self, task: TaskDef, min_match: float) -> frozenset[str]:
        """Agents matching at least `min_match` of the best; every agent if none matches."""
        relative = self.relative(task)
        if not any(relative.values()):
            return frozenset(relative)
        return frozenset(a for a, s in relative.items() if s >= min_match)


class Balancer:
    """Chooses an agent for a task among the candidates in service."""

    def __init__(
        self,
        agents: Iterable[AgentDef],
        *,
        strategy: str = "adaptive",
        min_match: float = 0.5,
        weights: ScoreWeights | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
        self.strategy = strategy
        self.min_match = min_match
        self.weights = weights or ScoreWeights()
        self._rng = rng or random.Random()
        self._last: str | None = None  # round-robin cursor
        self._current: dict[str, float] = {}  # smooth weighted round-robin state
        self.set_agents(agents)

    def set_agents(self, agents: Iterable[AgentDef]) -> None:
        """Start matching against a new set of agents (the vault changed)."""
        agents = list(agents)
        self._order = {agent.id: i for i, agent in enumerate(sorted(agents, key=lambda a: a.id))}
        self.matcher = ExpertiseMatcher(agents)
        self._current = {a: w for a, w in self._current.items() if a in self._order}

    def qualifying(self, task: TaskDef) -> frozenset[str]:
        """Agents this task may go to, health and load aside: the alternatives it names
        (BMAD's `analyst/pm`), else those whose expertise fits."""
        if task.agent is None and task.alternatives:
            return frozenset(a for a in task.alternatives if a in self._order)
        if task.agent is None:
            return self.matcher.qualifying(task, self.min_match)
        others = {a: s for a, s in self.matcher.relative(task).items() if a != task.agent}
        return frozenset(a for a, s in others.items() if s >= self.min_match)

    def choose(self, task: TaskDef, candidates: Sequence[Candidate]) -> str | None:
        """The agent to run the task now, among candidates in service; None means wait."""
        if task.agent is not None:
            named = next((c for c in candidates if c.agent_id == task.agent), None)
            if named is not None:
                return named.agent_id if named.free else None
            return self.best(task, candidates)
        pool = self._pool(task, candidates)
        if not pool:
            return None
        if self.strategy == "round_robin":
            return self._round_robin(pool).agent_id
        if self.strategy == "weighted_round_robin":
            return self._weighted_round_robin(pool).agent_id
        if self.strategy == "least_connections":
            return self._least_connections(pool).agent_id
        return self._earliest_finish(task, pool).agent_id

    def best(self, task: TaskDef, candidates: Sequence[Candidate]) -> str | None:
        """The highest-scoring qualifying candidate with a free slot, or None."""
        pool = self._pool(task, candidates)
        if not pool:
            return None
        return max(self.scores(task, pool), key=lambda s: s.total).agent_id

    def scores(self, task: TaskDef, candidates: Sequence[Candidate]) -> list[AgentScore]:
        """The weighted score of each candidate for the task."""
        expertise = self.matcher.relative(task)
        known = [c.peak_latency for c in candidates if c.peak_latency]
        fastest = min(known, default=None)
        w = self.weights
        scored = []
        for c in candidates:
            availability = c.health * c.free / c.capacity
            speed = 1.0 if fastest is None or not c.peak_latency else fastest / c.peak_latency
            performance = (1.0 - c.error_rate) * speed
            load = 1.0 / (1.0 + (c.in_flight + c.backlog) / c.capacity)
            match = expertise.get(c.agent_id, 0.0)
            total = (
                w.expertise * match
                + w.availability * availability
                + w.performance * performance
                + w.load * load
            )
            scored.append(AgentScore(c.agent_id, total, match, availability, performance, load))
        return scored

    def _pool(self, task: TaskDef, candidates: Sequence[Candidate]) -> list[Candidate]:
        allowed = self.qualifying(task)
        pool = [c for c in candidates if c.free and c.agent_id in allowed]
        return sorted(pool, key=lambda c: self._order.get(c.agent_id, len(self._order)))

    def _round_robin(self, pool: Sequence[Candidate]) -> Candidate:
        chosen = self._after_cursor(pool)
        self._last = chosen.agent_id
        return chosen

    def _after_cursor(self, pool: Sequence[Candidate]) -> Candidate:
        """The first candidate (in agent order) after the last one chosen, wrapping round."""
        last = -1 if self._last is None else self._order.get(self._last, -1)
        later = [c for c in pool if self._order.get(c.agent_id, -1) > last]
        return later[0] if later else pool[0]

    def _weighted_round_robin(self, pool: Sequence[Candidate]) -> Candidate:
        total = 0.0
        chosen = pool[0]
        for c in pool:
            self._current[c.agent_id] = self._current.get(c.agent_id, 0.0) + c.weight
            total += c.weight
            if self._current[c.agent_id] > self._current[chosen.agent_id]:
                chosen = c
        self._current[chosen.agent_id] -= total
        return chosen

    def _least_connections(self, pool: Sequence[Candidate]) -> Candidate:
        fewest = min(c.in_flight / c.weight for c in pool)
        tied = [c for c in pool if c.in_flight / c.weight == fewest]
        return self._round_robin(tied)

    def _earliest_finish(self, task: TaskDef, pool: Sequence[Candidate]) -> Candidate:
        if len(pool) == 1:
            return pool[0]
        expected = {c.agent_id: c.expected_seconds or c.peak_latency for c in pool}
        known = [seconds for seconds in expected.values() if seconds]
        if not known:
            return self._two_choices(task, pool)
        untried = max(known)  # no prediction and no latency: the slowest known
        finish = {
            c.agent_id: (expected[c.agent_id] or untried)
            / (1.0 - min(MAX_ERROR_RATE, c.error_rate))
            for c in pool
        }
        best = min(finish.values())
        near = [c for c in pool if finish[c.agent_id] <= best * NEAR_TIE]
        if len(near) == 1:
            return near[0]
        scores = {s.agent_id: s.total for s in self.scores(task, near)}
        return max(near, key=lambda c: scores[c.agent_id])

    def _two_choices(self, task: TaskDef, pool: Sequence[Candidate]) -> Candidate:
        if len(pool) == 1:
            return pool[0]
        scores = {s.agent_id: s.total for s in self.scores(task, pool)}
        first, second = self._rng.sample(list(pool), 2)
        return first if scores[first.agent_id] >= scores[second.agent_id] else second
