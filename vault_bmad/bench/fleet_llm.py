"""The loopback LLM server of the workload benchmark: each agent's model has its own speed,
and one agent degrades partway through (slower, then failing, then well again).

`FleetProcess` runs it in a process of its own, as a real LLM server runs apart from its
clients: in the client's process its threads would compete with the system measured for
one interpreter lock (the first calls of a run answered 45-95 ms late).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from types import TracebackType
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


class FleetProcess:
    """A FleetLLM served by a child process; start and stop it with `with`. `ok_calls` and
    `reset_counts` ask the child."""

    def __init__(self, scale: float, degradation: Degradation = DEGRADATION) -> None:
        self.scale = scale
        self.degradation = degradation
        self.base_url = ""
        self._pipe: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    def __enter__(self) -> FleetProcess:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(self.scale, self.degradation, child_end), name="fleet-llm"
        )
        self._process.start()
        child_end.close()  # so a child that dies reads as EOFError here, not a hang
        self.base_url = self._ask("base_url")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._pipe is not None and self._process is not None
        with contextlib.suppress(OSError):  # the child may be gone already
            self._pipe.send("stop")
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._pipe.close()

    @property
    def ok_calls(self) -> int:
        return int(self._ask("ok_calls"))

    def reset_counts(self) -> None:
        self._ask("reset_counts")

    def _ask(self, question: str) -> Any:
        assert self._pipe is not None, "the fleet process has not been started"
        self._pipe.send(question)
        return self._pipe.recv()


def _serve(scale: float, degradation: Degradation, pipe: Connection) -> None:
    """The child: a FleetLLM answering the parent's questions on `pipe` until "stop"."""
    with FleetLLM(scale, degradation) as server:
        answers: dict[str, Callable[[], object]] = {
            "base_url": lambda: server.base_url,
            "ok_calls": lambda: server.ok_calls,
            "reset_counts": server.reset_counts,
        }
        with contextlib.suppress(EOFError):  # the parent gone: stop too
            while (question := pipe.recv()) != "stop":
                pipe.send(answers[question]())
