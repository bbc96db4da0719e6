"""Runtime benchmark: prints JSON comparing each runtime against peers in the same run.

1. template: ms per render through TemplateRuntime (the guarded sandbox in a long-lived
   worker process, compiled templates kept there) against the same sandbox in this process
   (compiled once, and compiling every time), a fresh worker process per render, and
   unsandboxed Jinja2.
2. llm overhead: ms per request to a zero-latency loopback server through LlmRuntime
   (pooled client) against a new httpx.Client per request and a bare pooled httpx post.
3. llm concurrency: tasks/min through LlmRuntime with 1 thread against 10 threads, the
   server's latency drawn from a long-tailed (log-normal) distribution.

Usage: .venv/bin/python benchmarks/runtime_bench.py [--quick]
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from jinja2 import Environment, StrictUndefined

from vault_bmad.runtimes.base import ContextDoc, RunRequest
from vault_bmad.runtimes.llm import LlmRuntime, chat_messages
from vault_bmad.runtimes.loopback_llm import LoopbackLLM
from vault_bmad.runtimes.sandbox import GuardedSandbox
from vault_bmad.runtimes.template import DEFAULT_TEMPLATE, TemplateRuntime

QUICK = "--quick" in sys.argv
ROUNDS = 3 if QUICK else 7
PARAGRAPH = "Shops need invoices, refunds and receipts that reconcile with their bank. " * 25


def sample_request(n: int = 0) -> RunRequest:
    return RunRequest(
        task_id=f"task-{n}",
        title=f"Task {n}",
        runtime="llm",
        agent_id="architect",
        persona="You are Winston, a pragmatic architect. " * 10,
        body=f"Design part {n} of the billing service's public API.",
        context=tuple(ContextDoc(f"Docs/Context {i}.md", PARAGRAPH) for i in range(3)),
        dependency_outputs=(ContextDoc("Docs/PRD.md", PARAGRAPH),),
        template=None,
        template_path=None,
        model=None,
        params=(),
        timeout=60.0,
    )


def median_ms(actions: dict[str, tuple[Callable[[], object], int]]) -> dict[str, float]:
    """Per peer, the median over ROUNDS of the mean ms of its `repeats` calls.

    Peers take turns within each round, so drift in a noisy machine hits them alike.
    """
    rounds: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(ROUNDS):
        for name, (action, repeats) in actions.items():
            start = time.perf_counter()
            for _ in range(repeats):
                action()
            rounds[name].append((time.perf_counter() - start) / repeats * 1000)
    return {name: statistics.median(times) for name, times in rounds.items()}


def bench_template() -> dict[str, object]:
    request = sample_request()
    variables: dict[str, object] = {
        "persona": request.persona,
        "body": request.body,
        "context": list(request.context),
        "dependency_outputs": list(request.dependency_outputs),
        "params": {},
        "model": None,
    }
    runtime = TemplateRuntime()
    sandbox = GuardedSandbox(request.max_output_bytes)
    in_process = sandbox.from_string(DEFAULT_TEMPLATE)
    plain = Environment(undefined=StrictUndefined, keep_trailing_newline=True)
    plain_compiled = plain.from_string(DEFAULT_TEMPLATE)
    repeats = 200 if QUICK else 1000

    def fresh_process() -> None:
        spawned = TemplateRuntime(workers=1)
        spawned.render(request)
        spawned.close()

    ms = median_ms(
        {
            "worker": (lambda: runtime.render(request), repeats),
            "in_process": (lambda: in_process.render(variables), repeats),
            "recompiled": (lambda: sandbox.from_string(DEFAULT_TEMPLATE).render(variables), 50),
            "process_per_render": (fresh_process, 5 if QUICK else 10),
            "unsandboxed": (lambda: plain_compiled.render(variables), repeats),
        }
    )
    runtime.close()
    worker, in_proc = ms["worker"], ms["in_process"]
    return {
        "ms_per_render_runtime_worker_process": round(worker, 4),
        "ms_per_render_sandbox_in_process": round(in_proc, 4),
        "ms_per_render_sandbox_compiling_each_time": round(ms["recompiled"], 4),
        "ms_per_render_new_process_each_time": round(ms["process_per_render"], 2),
        "ms_per_render_unsandboxed_jinja2": round(ms["unsandboxed"], 4),
        "worker_overhead_ms": round(worker - in_proc, 4),
        "worker_vs_in_process_ratio": round(worker / in_proc, 2),
        "process_per_render_vs_worker_ratio": round(ms["process_per_render"] / worker, 1),
        "compile_cache_speedup": round(ms["recompiled"] / in_proc, 1),
        "sandbox_cost_ratio": round(in_proc / ms["unsandboxed"], 2),
    }


def bench_llm_overhead() -> dict[str, object]:
    request = sample_request()
    payload = {"model": "m", "messages": chat_messages(request), "stream": False}
    repeats = 30 if QUICK else 100
    with LoopbackLLM() as server, LlmRuntime(server.base_url) as runtime, httpx.Client() as bare:
        url = f"{server.base_url}/chat/completions"

        def fresh_client() -> None:
            with httpx.Client() as client:
                client.post(url, json=payload).json()

        ms = median_ms(
            {
                "pooled": (lambda: runtime.run(request), repeats),
                "per_call": (fresh_client, max(10, repeats // 5)),
                "raw": (lambda: bare.post(url, json=payload).json(), repeats),
            }
        )
        pooled, per_call, raw = ms["pooled"], ms["per_call"], ms["raw"]
    return {
        "ms_per_request_runtime_pooled": round(pooled, 3),
        "ms_per_request_new_client_each_call": round(per_call, 3),
        "ms_per_request_bare_httpx": round(raw, 3),
        "runtime_vs_bare_ratio": round(pooled / raw, 2),
        "new_client_vs_runtime_ratio": round(per_call / pooled, 1),
    }


def bench_llm_concurrency() -> dict[str, object]:
    tasks = 60 if QUICK else 200
    rng = random.Random(42)
    lock = threading.Lock()

    def long_tailed_latency() -> float:  # median 20 ms, p99 about 200 ms
        with lock:
            return min(1.0, rng.lognormvariate(mu=-3.9, sigma=1.0))

    results: dict[str, object] = {"tasks": tasks}
    per_workers: dict[int, float] = {}
    for workers in (1, 10):
        rounds = []
        for _ in range(3 if QUICK else 5):
            rng.seed(42)
            requests = [sample_request(n) for n in range(tasks)]
            with (
                LoopbackLLM(latency=long_tailed_latency) as server,
                LlmRuntime(server.base_url) as runtime,
            ):
                start = time.perf_counter()
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    list(pool.map(runtime.run, requests))
                elapsed = time.perf_counter() - start
            rounds.append(tasks / elapsed * 60)
        per_workers[workers] = statistics.median(rounds)
        results[f"tasks_per_min_{workers}_threads"] = round(per_workers[workers])
    results["speedup_10_vs_1_threads"] = round(per_workers[10] / per_workers[1], 2)
    return results


def main() -> None:
    report = {
        "template": bench_template(),
        "llm_overhead": bench_llm_overhead(),
        "llm_concurrency": bench_llm_concurrency(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
