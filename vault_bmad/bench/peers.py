"""The systems vault-bmad is compared with, on the same tasks and the same LLM server.

- baseline: the design's "before": one call at a time, no cache;
- threadpool: a ThreadPoolExecutor as big as all agents' slots, agents in round robin, a
  `functools.lru_cache` over requests, ready tasks submitted in FIFO order; a task every
  agent failed ends failed, and the tasks that require it are never run;
- dask: one task graph on a Dask LocalCluster, dependencies as futures; identical requests
  share a key (`pure=True`), which is Dask's own de-duplication.

Each picks agents in round robin among those a task allows, and on a failed call moves to
the next one. Latency is a task's time from dispatch to its answer: its calls, the wait for
an identical request in flight (a shared Dask key), or ~0 when a cache served it.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import count
from typing import Any

from vault_bmad.bench.workload_spec import BenchTask, eligible, model_of, slot_count
from vault_bmad.errors import VaultBmadError
from vault_bmad.runtimes.base import ContextDoc, RunRequest, Runtime
from vault_bmad.runtimes.llm import LlmRuntime

CALL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SystemRun:
    makespan_s: float  # scaled, as measured
    latencies_s: tuple[float, ...]  # scaled, one per task that ended done
    done: int


def _runtime(base_url: str) -> LlmRuntime:
    return LlmRuntime(base_url, timeout_s=CALL_TIMEOUT_S)


def call_with_failover(
    runtime: Runtime, body: str, agents: tuple[str, ...], deps: tuple[str, ...]
) -> tuple[str, float]:
    """Ask the first agent, then the next on failure, twice round; (reply, seconds)."""
    started = time.monotonic()
    last: Exception | None = None
    for agent_id in agents * 2:
        request = RunRequest(
            task_id="bench",
            title="bench",
            runtime="llm",
            agent_id=agent_id,
            persona=f"You are {agent_id.title()}. Answer briefly.",
            body=body,
            context=(),
            dependency_outputs=tuple(ContextDoc(f"dep{i}", text) for i, text in enumerate(deps)),
            template=None,
            template_path=None,
            model=model_of(agent_id),
            params=(),
            timeout=CALL_TIMEOUT_S,
        )
        try:
            return runtime.run(request).text, time.monotonic() - started
        except VaultBmadError as exc:
            last = exc
    raise VaultBmadError(f"{body} failed on every agent: {last}")


class RoundRobin:
    """Agent order per task: a rotating start among the agents the task allows."""

    def __init__(self) -> None:
        self._turn = count()
        self._lock = threading.Lock()

    def order(self, task: BenchTask) -> tuple[str, ...]:
        ids = [agent.id for agent in eligible(task)]
        with self._lock:
            start = next(self._turn) % len(ids)
        return tuple(ids[start:] + ids[:start])


def run_baseline(tasks: tuple[BenchTask, ...], base_url: str) -> SystemRun:
    runtime, order = _runtime(base_url), RoundRobin()
    outputs: dict[str, str] = {}
    latencies: list[float] = []
    started = time.monotonic()
    try:
        for task in tasks:
            deps = tuple(outputs[need] for need in task.requires)
            agents = order.order(task)
            outputs[task.id], seconds = call_with_failover(runtime, task.body, agents, deps)
            latencies.append(seconds)
    finally:
        runtime.close()
    return SystemRun(time.monotonic() - started, tuple(latencies), len(outputs))


def run_threadpool(tasks: tuple[BenchTask, ...], base_url: str) -> SystemRun:
    runtime = _runtime(base_url)
    try:
        return run_threadpool_on(tasks, runtime)
    finally:
        runtime.close()


def run_threadpool_on(tasks: tuple[BenchTask, ...], runtime: Runtime) -> SystemRun:
    """The thread pool peer, calling `runtime` (an LLM server's, or a simulated fleet)."""
    order = RoundRobin()

    @functools.lru_cache(maxsize=4096)
    def cached(body: str, agents: tuple[str, ...], deps: tuple[str, ...]) -> str:
        return call_with_failover(runtime, body, agents, deps)[0]

    def attempt(task: BenchTask, deps: tuple[str, ...]) -> tuple[str, float]:
        began = time.monotonic()
        agents = (task.agent,) if task.agent else order.order(task)
        return cached(task.body, agents, deps), time.monotonic() - began

    outputs: dict[str, str] = {}
    failed: set[str] = set()  # every agent failed it, or a task it requires failed
    latencies: list[float] = []
    waiting = list(tasks)
    running: dict[Future[tuple[str, float]], BenchTask] = {}
    started = time.monotonic()
    with ThreadPoolExecutor(slot_count(), thread_name_prefix="bench-threadpool") as pool:
        while waiting or running:
            for task in list(waiting):  # in topological order, so blocking is transitive
                if any(need in failed for need in task.requires):
                    waiting.remove(task)
                    failed.add(task.id)
                elif all(need in outputs for need in task.requires):
                    waiting.remove(task)
                    deps = tuple(outputs[need] for need in task.requires)
                    running[pool.submit(attempt, task, deps)] = task
            if not running:
                continue
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                try:
                    outputs[task.id], seconds = future.result()
                except VaultBmadError:
                    failed.add(task.id)
                    continue
                latencies.append(seconds)
    return SystemRun(time.monotonic() - started, tuple(latencies), len(outputs))


_worker_runtimes: dict[str, LlmRuntime] = {}
_worker_lock = threading.Lock()


def dask_call(
    base_url: str, body: str, agents: tuple[str, ...], *deps: tuple[str, float]
) -> tuple[str, float]:
    """One task on a Dask worker, with a runtime kept per worker process."""
    with _worker_lock:
        runtime = _worker_runtimes.setdefault(base_url, _runtime(base_url))
    return call_with_failover(runtime, body, agents, tuple(text for text, _ in deps))


def run_dask(tasks: tuple[BenchTask, ...], base_url: str) -> SystemRun:
    from distributed import Client, LocalCluster, as_completed

    order = RoundRobin()
    slots = slot_count()
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=-(-slots // 2),
            processes=True,
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        client.submit(sum, [1]).result()  # workers up before the clock starts
        started = time.monotonic()
        futures: dict[str, Any] = {}
        unique: dict[object, Any] = {}
        for task in tasks:
            agents = (task.agent,) if task.agent else order.order(task)
            deps = [futures[need] for need in task.requires]
            future = client.submit(dask_call, base_url, task.body, agents, *deps, pure=True)
            futures[task.id] = future
            unique.setdefault(future.key, future)
        for _ in as_completed(list(unique.values())):
            pass
        makespan = time.monotonic() - started
        latencies = tuple(future.result()[1] for future in futures.values())
    return SystemRun(makespan, latencies, len(futures))


PEERS: dict[str, Callable[[tuple[BenchTask, ...], str], SystemRun]] = {
    "baseline": run_baseline,
    "threadpool": run_threadpool,
    "dask": run_dask,
}
