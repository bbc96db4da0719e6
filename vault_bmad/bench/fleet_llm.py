"""The loopback LLM server of the workload benchmark: each agent's model has its own speed,
and one agent degrades partway through (slower, then failing, then well again)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from vault_bmad.bench.workload_spec import (
    DEGRADATION,
    FLEET,
    MODEL_PREFIX,
    Degradation,
    Phase,
    base_latency_s,
    marker_in,
    model_of,
)
from vault_bmad.runtimes.loopback_llm import Answer, LoopbackLLM


class FleetLLM(LoopbackLLM):
    """A LoopbackLLM whose latency is the task's drawn latency x its model's slowness x
    `scale`, so a run is short. Each model answers at most its agent's `capacity` calls at
    once, as a real backend would; more wait for a slot, whichever system sends them.
    `ok_calls` and `failed_calls` count answers given."""

    def __init__(self, scale: float, degradation: Degradation = DEGRADATION) -> None:
        super().__init__()
        self.scale = scale
        self.degradation = degradation
        self._slowness = {model_of(agent.id): agent.slowness for agent in FLEET}
        self._slots = {model_of(a.id): threading.BoundedSemaphore(a.capacity) for a in FLEET}
        self._any_model = threading.BoundedSemaphore(1)
        self._count_lock = threading.Lock()
        self._by_model: Counter[str] = Counter()
        self.ok_calls = 0
        self.failed_calls = 0

    def __enter__(self) -> FleetLLM:
        super().__enter__()
        return self

    def reset_counts(self) -> None:
        with self._count_lock:
            self._by_model.clear()
            self.ok_calls = self.failed_calls = 0

    def _answer(self, call: int, body: Mapping[str, Any]) -> Answer:
        model = str(body.get("model", ""))
        text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        latency = base_latency_s(marker_in(text)) * self._slowness.get(model, 1)
        with self._slots.get(model, self._any_model):
            return self._answer_in_slot(call, body, model, latency)

    def _answer_in_slot(
        self, call: int, body: Mapping[str, Any], model: str, latency: float
    ) -> Answer:
        phase = self._phase(model)
        self._stopping.wait(self.degradation.seconds(phase, latency) * self.scale)
        if phase == "failing":
            with self._count_lock:
                self.failed_calls += 1
            error = {"error": {"message": f"{model} is overloaded", "type": "server_error"}}
            return Answer(503, error)
        with self._count_lock:
            self.ok_calls += 1
        return super()._answer(call, body)

    def _phase(self, model: str) -> Phase:
        with self._count_lock:
            self._by_model[model] += 1
            count = self._by_model[model]
        return self.degradation.phase(model.removeprefix(MODEL_PREFIX), count)
