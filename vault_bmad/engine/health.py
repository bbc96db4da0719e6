"""Agent health: latency and error tracking, a health score, take-out, cool-down and probe.

Per agent it keeps an EWMA of the error indicator, the run of consecutive failures, an EWMA
of how much of its timeout each attempt used, and a peak-EWMA of latency for the balancer.
They combine into a score in [0, 1]:

    score = 0.5*(1 - error_rate) + 0.3*(1 - consecutive/failure_limit) + 0.2*(1 - timeout_use)

An agent in service whose score drops below `threshold` is taken out. After `cooldown`
seconds it may take one probe task; it comes back when the probe succeeds, and a failed
probe restarts the cool-down. A probe whose task failed for its own reasons says nothing
about the agent: the next task is its probe at once. Only transient failures of the
agent's own work are recorded here (`errors.Failure.counts_toward_health`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class AgentState(StrEnum):
    IN_SERVICE = "in_service"
    OUT = "out"  # taken out, cooling down or waiting for its probe to be sent
    PROBING = "probing"  # running its probe task


@dataclass(frozen=True)
class HealthChange:
    agent_id: str
    before: AgentState
    after: AgentState
    at: float
    score: float
    reason: str


@dataclass(frozen=True)
class AgentHealth:
    """A snapshot of one agent's health, for reports and the dashboard."""

    agent_id: str
    state: AgentState
    score: float
    latency: float | None  # EWMA seconds per attempt
    peak_latency: float | None  # peak-EWMA seconds, decayed to now
    error_rate: float
    consecutive_failures: int
    attempts: int
    probe_at: float | None  # when it may take a probe, while out
    why: str | None  # while out: why it was taken out, with the last failure


@dataclass
class _Track:
    state: AgentState = AgentState.IN_SERVICE
    error_rate: float = 0.0
    consecutive_failures: int = 0
    timeout_use: float = 0.0
    latency: float | None = None
    peak: float = 0.0
    peak_stamp: float = 0.0
    attempts: int = 0
    out_since: float | None = None
    why: str | None = None  # why it is out


class HealthMonitor:
    """Health of every agent, driven by attempt results and an injected clock."""

    def __init__(
        self,
        *,
        threshold: float = 0.7,
        cooldown: float = 30.0,
        alpha: float = 0.2,
        latency_decay: float = 10.0,
        failure_limit: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < alpha <= 1 or failure_limit < 1 or latency_decay <= 0 or cooldown < 0:
            raise ValueError("need 0 < alpha <= 1, failure_limit >= 1, latency_decay > 0")
        self.threshold = threshold
        self.cooldown = cooldown
        self.alpha = alpha
        self.latency_decay = latency_decay
        self.failure_limit = failure_limit
        self._clock = clock
        self._tracks: dict[str, _Track] = {}

    def _track(self, agent_id: str) -> _Track:
        return self._tracks.setdefault(agent_id, _Track())

    def record(
        self,
        agent_id: str,
        *,
        ok: bool,
        seconds: float,
        timeout: float | None = None,
        probe: bool = False,
        error: str | None = None,
    ) -> HealthChange | None:
        """Learn from one attempt (`error` says how it failed); returns the change of state
        it caused, if any.

        Only the probe's result (`probe=True`) moves an agent that is out; results of work it
        started before it was taken out still feed its figures.
        """
        now = self._clock()
        track = self._track(agent_id)
        self._learn(track, ok, seconds, timeout, now)
        if probe and track.state is AgentState.PROBING:
            if ok:
                track.error_rate, track.consecutive_failures = 0.0, 0
                track.state, track.out_since, track.why = AgentState.IN_SERVICE, None, None
                return self._change(agent_id, AgentState.PROBING, now, "probe succeeded")
            track.state, track.out_since = AgentState.OUT, now
            track.why = _why("its probe failed", error)
            return self._change(agent_id, AgentState.PROBING, now, track.why)
        if track.state is AgentState.IN_SERVICE and self._score(track) < self.threshold:
            return self.take_out(agent_id, _why(f"health fell below {self.threshold:g}", error))
        return None

    def probe_inconclusive(self, agent_id: str) -> HealthChange | None:
        """The probe's task failed for its own reasons, or a cache served it without the
        agent: the agent stays out, and its next task is the probe, at once."""
        track = self._track(agent_id)
        if track.state is not AgentState.PROBING:
            return None
        track.state, track.out_since = AgentState.OUT, self._clock() - self.cooldown
        return self._change(agent_id, AgentState.PROBING, self._clock(), "probe inconclusive")

    def _learn(
        self, track: _Track, ok: bool, seconds: float, timeout: float | None, now: float
    ) -> None:
        a = self.alpha
        failed = 0.0 if ok else 1.0
        track.error_rate += a * (failed - track.error_rate)
        track.consecutive_failures = 0 if ok else track.consecutive_failures + 1
        if timeout:
            track.timeout_use += a * (min(1.0, seconds / timeout) - track.timeout_use)
        track.latency = (
            seconds if track.latency is None else track.latency + a * (seconds - track.latency)
        )
        # Peak-EWMA (Finagle): jump up to a slower sample at once, decay towards faster ones.
        weight = math.exp(-max(0.0, now - track.peak_stamp) / self.latency_decay)
        track.peak = (
            seconds if seconds > track.peak else track.peak * weight + seconds * (1 - weight)
        )
        track.peak_stamp = now
        track.attempts += 1

    def take_out(self, agent_id: str, reason: str = "taken out") -> HealthChange | None:
        """Take an agent out of service now (also for an operator or a vault change)."""
        track = self._track(agent_id)
        if track.state is AgentState.OUT:
            return None
        before = track.state
        track.state, track.out_since, track.why = AgentState.OUT, self._clock(), reason
        return self._change(agent_id, before, track.out_since, reason)

    def begin_probe(self, agent_id: str) -> HealthChange:
        """Mark that the agent's probe task has been sent; call only when probe_due."""
        if not self.probe_due(agent_id):
            raise ValueError(f"agent {agent_id!r} is not due a probe")
        self._track(agent_id).state = AgentState.PROBING
        return self._change(agent_id, AgentState.OUT, self._clock(), "probe sent")

    def state(self, agent_id: str) -> AgentState:
        track = self._tracks.get(agent_id)
        return track.state if track else AgentState.IN_SERVICE

    def in_service(self, agent_id: str) -> bool:
        return self.state(agent_id) is AgentState.IN_SERVICE

    def probe_at(self, agent_id: str) -> float | None:
        """When an agent that is out may take its probe; None unless it is out."""
        track = self._tracks.get(agent_id)
        if track is None or track.state is not AgentState.OUT or track.out_since is None:
            return None
        return track.out_since + self.cooldown

    def out_of_service(self) -> list[str]:
        """The agents taken out (cooling down, or probing), in id order."""
        return sorted(a for a, t in self._tracks.items() if t.state is not AgentState.IN_SERVICE)

    def probe_due(self, agent_id: str) -> bool:
        due = self.probe_at(agent_id)
        return due is not None and self._clock() >= due

    def score(self, agent_id: str) -> float:
        track = self._tracks.get(agent_id)
        return self._score(track) if track else 1.0

    def error_rate(self, agent_id: str) -> float:
        track = self._tracks.get(agent_id)
        return track.error_rate if track else 0.0

    def peak_latency(self, agent_id: str) -> float | None:
        """Peak-EWMA latency decayed to now, so an idle slow agent is tried again in time."""
        track = self._tracks.get(agent_id)
        if track is None or track.attempts == 0:
            return None
        return self._decayed_peak(track, self._clock())

    def snapshot(self, agent_id: str) -> AgentHealth:
        track = self._tracks.get(agent_id) or _Track()
        return AgentHealth(
            agent_id=agent_id,
            state=track.state,
            score=self._score(track),
            latency=track.latency,
            peak_latency=self.peak_latency(agent_id),
            error_rate=track.error_rate,
            consecutive_failures=track.consecutive_failures,
            attempts=track.attempts,
            probe_at=self.probe_at(agent_id),
            why=track.why if track.state is not AgentState.IN_SERVICE else None,
        )

    def forget(self, agent_id: str) -> None:
        """Drop an agent's history (it left the vault)."""
        self._tracks.pop(agent_id, None)

    def back_at(self, agent_id: str, wall_now: float) -> float | None:
        """While an agent is out: when it may take work again (its probe), on the wall clock
        that reads `wall_now` now."""
        probe_at = self.probe_at(agent_id)
        return None if probe_at is None else wall_now + max(0.0, probe_at - self._clock())

    def _score(self, track: _Track) -> float:
        streak = max(0.0, 1.0 - track.consecutive_failures / self.failure_limit)
        score = 0.5 * (1 - track.error_rate) + 0.3 * streak + 0.2 * (1 - track.timeout_use)
        return min(1.0, max(0.0, score))

    def _decayed_peak(self, track: _Track, now: float) -> float:
        return track.peak * math.exp(-max(0.0, now - track.peak_stamp) / self.latency_decay)

    def _change(self, agent_id: str, before: AgentState, at: float, reason: str) -> HealthChange:
        track = self._track(agent_id)
        return HealthChange(agent_id, before, track.state, at, self._score(track), reason)


def _why(reason: str, error: str | None) -> str:
    return f"{reason}; the last failure: {error}" if error else reason
