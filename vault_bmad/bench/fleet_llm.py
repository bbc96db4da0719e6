"""The loopback LLM server of the workload benchmark: each agent's model has its own speed,
and one agent degrades partway through (slower, then failing, then well again).

`FleetProcess` runs it in a process of its own, as a real LLM server runs apart from its
clients: in the client's process its threads would compete with the system measured for
one interpreter lock (the first calls of a run answered 45-95 ms late).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict
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
    """A FleetLLM served by a child Python process (`python -m vault_bmad.bench.fleet_llm`);
    start and stop it with `with`. `ok_calls` and `reset_counts` ask the child, one JSON
    line each way on its stdin and stdout."""

    def __init__(self, scale: float, degradation: Degradation = DEGRADATION) -> None:
        self.scale = scale
        self.degradation = degradation
        self.base_url = ""
        self._child: subprocess.Popen[str] | None = None

    def __enter__(self) -> FleetProcess:
        plan = json.dumps({"scale": self.scale, "degradation": asdict(self.degradation)})
        command = [sys.executable, "-m", "vault_bmad.bench.fleet_llm", plan]
        self._child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.base_url = str(self._ask("base_url"))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._child is not None and self._child.stdin is not None
        with contextlib.suppress(OSError):  # the child may be gone already
            self._child.stdin.close()  # its end of input: it stops serving
        try:
            self._child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        if self._child.stdout is not None:
            self._child.stdout.close()

    @property
    def ok_calls(self) -> int:
        return int(self._ask("ok_calls"))

    def reset_counts(self) -> None:
        self._ask("reset_counts")

    def _ask(self, question: str) -> Any:
        child = self._child
        assert child is not None and child.stdin is not None and child.stdout is not None
        child.stdin.write(question + "\n")
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the fleet LLM process ended (exit code {child.wait()})")
        return json.loads(line)


def _serve(plan: Mapping[str, Any]) -> None:
    """The child: a FleetLLM answering the parent's questions, one a line, until stdin
    ends."""
    with FleetLLM(float(plan["scale"]), Degradation(**plan["degradation"])) as server:
        answers: dict[str, Callable[[], object]] = {
            "base_url": lambda: server.base_url,
            "ok_calls": lambda: server.ok_calls,
            "reset_counts": server.reset_counts,
        }
        for question in sys.stdin:
            print(json.dumps(answers[question.strip()]()), flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the parent's; it closes stdin
    _serve(json.loads(sys.argv[1]))
