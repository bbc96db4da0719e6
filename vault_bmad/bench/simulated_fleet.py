"""The fleet of `workload_spec.py` in process: a runtime that sleeps instead of calling an LLM.

It stands in for `fleet_llm.FleetLLM` where HTTP would only add noise (the orchestrator
benchmark): the same latency per task and agent, the same slots per agent, the same
degradation, with every call recorded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from vault_bmad.bench.workload_spec import (
    DEGRADATION,
    FLEET,
    BenchAgent,
    Degradation,
    base_latency_s,
    marker_in,
)
from vault_bmad.errors import RuntimeUnavailable
from vault_bmad.runtimes.base import RunRequest, RuntimeOutput


@dataclass(frozen=True)
class Call:
    """One call as the simulated agent saw it."""

    marker: str  # the item the request asked about
    agent_id: str
    started: float  # before waiting for a slot of the agent
    ended: float
    ok: bool


class SimulatedFleet:
    """A runtime named "llm" whose call takes the task's drawn latency x the agent's slowness
    x `scale`; safe across threads. Each agent runs at most `capacity` calls at once (more
    wait for a slot, as at a real backend); the degrading agent's phase is read when a call
    gets its slot."""

    name = "llm"

    def __init__(
        self,
        scale: float,
        degradation: Degradation = DEGRADATION,
        fleet: tuple[BenchAgent, ...] = FLEET,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.scale = scale
        self._degradation = degradation
        self._agents = {agent.id: agent for agent in fleet}
        self._slots = {a.id: threading.BoundedSemaphore(a.capacity) for a in fleet}
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._calls_by_agent: Counter[str] = Counter()
        self._calls: list[Call] = []

    @property
    def calls(self) -> tuple[Call, ...]:
        with self._lock:
            return tuple(self._calls)

    def run(self, request: RunRequest) -> RuntimeOutput:
        agent = self._agents[request.agent_id]
        marker = marker_in(request.body)
        started = self._clock()
        with self._slots[agent.id]:
            with self._lock:
                self._calls_by_agent[agent.id] += 1
                phase = self._degradation.phase(agent.id, self._calls_by_agent[agent.id])
            latency = base_latency_s(marker) * agent.slowness
            self._sleep(self._degradation.seconds(phase, latency) * self.scale)
        call = Call(marker, agent.id, started, self._clock(), ok=phase != "failing")
        with self._lock:
            self._calls.append(call)
        if not call.ok:
            raise RuntimeUnavailable(f"agent {agent.id} is unavailable (simulated)")
        return RuntimeOutput(f"{request.title}: item {marker} done by {agent.id}\n", self.name)
