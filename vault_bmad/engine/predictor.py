"""Execution-time prediction from history, for critical-path scheduling and agent choice.

History is kept per unit of complexity (seconds / TaskDef.complexity) as exponentially
weighted moving averages of its logarithm (a plain mean until there are 1/alpha samples):
geometric means, as durations differ by factors. It is grouped four ways. A prediction
uses the most specific group that has enough samples: the agent on this kind of task, then
the agent on any task, then any agent on this kind of task, then all history, then a
default; and scales it by complexity. A group's mean is pulled toward the broader group's
as a prior worth PRIOR_SAMPLES observations (credibility weighting): a few calls say
little, as one task can take ten times another, so an agent that drew two short tasks does
not outrank one with twenty calls of history. The orchestrator replays the store's recent attempts
into it at start, so a restarted service knows its agents.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from vault_bmad.model.definitions import TaskDef

Basis = Literal["agent+kind", "agent", "kind", "global", "default"]


@dataclass(frozen=True)
class Observation:
    """One finished attempt, as the metrics store keeps it."""

    agent_id: str
    kind: str
    seconds: float
    complexity: float = 1.0


@dataclass(frozen=True)
class Prediction:
    seconds: float
    basis: Basis  # which group of history it came from
    samples: int  # how many observations that group holds


PRIOR_SAMPLES = 2.0  # the weight, in observations, of the broader group's mean
_SHORTEST_S = 1e-4  # a duration's floor, so that its logarithm is finite


@dataclass
class _Average:
    """A moving geometric mean: durations vary by factors (a long task is ten times a short
    one, an agent twice as fast as another), so one long task must not outweigh many short
    ones, as it does in a plain mean."""

    log_value: float = 0.0
    samples: int = 0

    def weight(self, alpha: float) -> float:
        """How many observations the mean is worth: a moving mean of many samples is
        worth as much as a plain mean of (2 - alpha) / alpha."""
        return min(float(self.samples), (2 - alpha) / alpha)

    def add(self, sample: float, alpha: float) -> None:
        """A plain mean of the first 1/alpha samples, then moving: noisy early samples count
        alike instead of the latest outweighing the rest."""
        self.samples += 1
        logged = math.log(max(_SHORTEST_S, sample))
        self.log_value += max(alpha, 1 / self.samples) * (logged - self.log_value)


class DurationPredictor:
    """Moving averages of task duration per agent and task kind, with fallbacks."""

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        default_seconds: float = 1.0,
        min_samples: int = 1,
    ) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        if default_seconds <= 0:
            raise ValueError("default_seconds must be positive")
        self.alpha = alpha
        self.default_seconds = default_seconds
        self.min_samples = max(1, min_samples)
        self._by_agent_kind: dict[tuple[str, str], _Average] = {}
        self._by_agent: dict[str, _Average] = {}
        self._by_kind: dict[str, _Average] = {}
        self._overall = _Average()
        # per (kind, agent), at complexity 1, until the next observation
        self._per_unit: dict[tuple[str, str | None], Prediction] = {}

    def learn(self, history: Iterable[Observation]) -> None:
        """Observe recorded history, oldest first (e.g. from the metrics store at start-up)."""
        for seen in history:
            self.observe(seen.agent_id, seen.kind, seen.seconds, seen.complexity)

    def observe(self, agent_id: str, kind: str, seconds: float, complexity: float = 1.0) -> None:
        """Learn from one successful attempt that took `seconds`."""
        if seconds < 0 or complexity <= 0:
            raise ValueError("seconds must be >= 0 and complexity > 0")
        unit = seconds / complexity
        self._by_agent_kind.setdefault((agent_id, kind), _Average()).add(unit, self.alpha)
        self._by_agent.setdefault(agent_id, _Average()).add(unit, self.alpha)
        self._by_kind.setdefault(kind, _Average()).add(unit, self.alpha)
        self._overall.add(unit, self.alpha)
        self._per_unit.clear()  # every prediction leans on all history's mean

    def predict(
        self, kind: str, complexity: float = 1.0, agent_id: str | None = None
    ) -> Prediction:
        """Predicted seconds for a task of this kind and complexity on this agent (or any)."""
        unit = self._per_unit.get((kind, agent_id))
        if unit is None:
            unit = self._per_unit[(kind, agent_id)] = self._predict_unit(kind, agent_id)
        if complexity == 1.0:
            return unit
        return Prediction(unit.seconds * complexity, unit.basis, unit.samples)

    def _predict_unit(self, kind: str, agent_id: str | None) -> Prediction:
        agent_kind = agent = None
        if agent_id is not None:
            agent_kind = self._by_agent_kind.get((agent_id, kind))
            agent = self._by_agent.get(agent_id)
        overall = self._overall.log_value
        agent_mean = overall if agent is None else self._pulled(agent, overall)
        # most specific first, each with the mean it is pulled toward
        groups: list[tuple[Basis, _Average | None, float]] = [
            ("agent+kind", agent_kind, agent_mean),
            ("agent", agent, overall),
            ("kind", self._by_kind.get(kind), overall),
        ]
        for basis, average, prior in groups:
            if average is not None and average.samples >= self.min_samples:
                return Prediction(math.exp(self._pulled(average, prior)), basis, average.samples)
        if self._overall.samples >= self.min_samples:
            return Prediction(math.exp(overall), "global", self._overall.samples)
        return Prediction(self.default_seconds, "default", 0)

    def _pulled(self, average: _Average, prior: float) -> float:
        """The group's log mean pulled toward the `prior` log mean (credibility weighting)."""
        weight = average.weight(self.alpha)
        return (weight * average.log_value + PRIOR_SAMPLES * prior) / (weight + PRIOR_SAMPLES)

    def predict_task(self, task: TaskDef, agent_id: str | None = None) -> float:
        """Predicted seconds for the task, on `agent_id` or else the agent it names."""
        return self.predict(task.kind, task.complexity, agent_id or task.agent).seconds
